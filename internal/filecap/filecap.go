// Package filecap reads the files strangler is pointed at (its
// configuration, the files that names: ${file:…} secrets, certificates,
// keys, CA bundles, and the local state snapshot) with a bound on their
// size. A path naming /dev/zero, a named pipe or a file growing while it is
// read would otherwise hold `config check`, a start or a reload for good,
// and take all the memory on the way. RegularOrAbsent is the same look
// for the files strangler writes or opens as a database.
package filecap

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"syscall"

	"strangler/internal/human"
)

// Limit bounds the configuration file and each file it names: a real one
// is a few KiB, a CA bundle of every public authority about 250 KiB.
const Limit = 4 << 20

// Read returns the contents of the regular file at path, or an error
// naming path when it is something else (a directory, a device, a named
// pipe, a socket) or holds more than limit bytes, counted as they are read.
func Read(path string, limit int64) ([]byte, error) {
	// Looked at before opening: opening a named pipe waits for a writer,
	// and opening some devices does something.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi, limit); err != nil {
		return nil, err
	}
	// O_NONBLOCK, and the look again on what was opened: the path may have
	// been replaced by a pipe in between. A regular file ignores the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(path, fi, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(path, limit)
	}
	return b, nil
}

// RegularOrAbsent returns nil when path names a regular file or nothing yet,
// and otherwise an error naming path and what it is: the check for a file
// strangler is to create or write (a store, a backup, a report, the
// state snapshot), made before anything opens it. Writing to a named
// pipe waits for a reader for good, SQLite handed /dev/zero reads zeros,
// and a rename over a device would replace it.
func RegularOrAbsent(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return regular(path, fi, math.MaxInt64)
}

// regular refuses what is not a regular file, or is larger than limit.
func regular(path string, fi fs.FileInfo, limit int64) error {
	var kind string
	switch m := fi.Mode(); {
	case m.IsRegular():
		if fi.Size() > limit {
			return tooLarge(path, limit)
		}
		return nil
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	default:
		kind = "a special file"
	}
	return fmt.Errorf("%s is %s: want a regular file", path, kind)
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("%s is larger than %s, the most strangler reads of it", path, human.Bytes(limit))
}

// KeyPair loads a PEM certificate (chain) and its private key, each read
// with Limit.
func KeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := Read(certFile, Limit)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := Read(keyFile, Limit)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}
