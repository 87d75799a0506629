package main

import "syscall"

// refuseCoreDumps makes the process not dumpable: a crash writes no core
// file, even under GOTRACEBACK=crash and a raised `ulimit -c`, and no
// other process of the same user may attach to it or read its memory
// (ptrace, /proc/PID/mem). Its memory holds the requests and answers it
// relays, and a core file would put them on disk wherever the kernel
// writes cores. The stacks a crash prints to stderr are not affected.
func refuseCoreDumps() {
	// prctl fails only for an argument other than 0 or 1.
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
}
