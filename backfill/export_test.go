package backfill

import "time"

// quickPause is the first pause of the resumption policy in the tests
// that take a database away for good: the five resumptions take 310 ms
// rather than 31 s, and say so ("resumed 5 times over 310ms"). The tests
// of a database that comes back keep the real policy; its pauses are
// TestTheResumptionPolicyWaitsHalfAMinute's.
const quickPause = 10 * time.Millisecond

// QuickResumption is opts with the resumption policy's pauses a hundredth
// as long.
func QuickResumption(opts Options) Options {
	opts.resumePause = quickPause
	return opts
}

// QuickVerify is QuickResumption for verify.
func QuickVerify(opts VerifyOptions) VerifyOptions {
	opts.resumePause = quickPause
	return opts
}
