package domain

import "testing"

func TestLifecycle(t *testing.T) {
	for _, c := range []struct {
		mode         Mode
		stage        int
		back         Mode
		nextRead     Mode
		nextWrite    Mode
		takesPercent bool
	}{
		{ModeLegacy, 0, ModeLegacy, ModeShadow, ModeDualWrite, false},
		{ModeShadow, 1, ModeLegacy, ModeFallback, ModeFallback, false},
		{ModeDualWrite, 1, ModeLegacy, ModeModern, ModeModern, false},
		{ModeFallback, 2, ModeLegacy, ModeModern, ModeModern, true},
		{ModeModern, 3, ModeFallback, ModeModern, ModeModern, true},
	} {
		if got := c.mode.Stage(); got != c.stage {
			t.Errorf("%s.Stage() = %d, want %d", c.mode, got, c.stage)
		}
		if got := c.mode.StepBack(); got != c.back {
			t.Errorf("%s.StepBack() = %s, want %s", c.mode, got, c.back)
		}
		if got := c.mode.Next(false); got != c.nextRead {
			t.Errorf("%s.Next(read) = %s, want %s", c.mode, got, c.nextRead)
		}
		if got := c.mode.Next(true); got != c.nextWrite {
			t.Errorf("%s.Next(write) = %s, want %s", c.mode, got, c.nextWrite)
		}
		if got := c.mode.TakesPercent(); got != c.takesPercent {
			t.Errorf("%s.TakesPercent() = %v, want %v", c.mode, got, c.takesPercent)
		}
	}
	half := 50.0
	if !Later("", ModeFallback, &half, ModeFallback, nil) || Later("", ModeModern, &half, ModeFallback, &half) || Later("", ModeShadow, nil, ModeDualWrite, nil) ||
		!Later("", ModeLegacy, nil, ModeShadow, nil) || !Later(Legacy, ModeShadow, nil, ModeFallback, &half) {
		t.Error("Later: more traffic to modern or a later stage is forward; the other way, or a mode of the same stage, is not")
	}
	// An earlier stage that sends modern more of the traffic is forward:
	// modern 50% to fallback 100% has modern answer every client.
	if !Later("", ModeModern, &half, ModeFallback, nil) || Later("", ModeModern, &half, ModeLegacy, nil) {
		t.Error("Later: modern 50% to fallback 100% is forward, modern 50% to legacy is not")
	}
	// So is one to shadow or dual-write where modern is the primary,
	// which answers every client.
	if !Later(Modern, ModeFallback, &half, ModeShadow, nil) || !Later(Modern, ModeModern, &half, ModeDualWrite, nil) ||
		Later(Legacy, ModeFallback, &half, ModeShadow, nil) || Later(Modern, ModeModern, nil, ModeShadow, nil) {
		t.Error("Later: fallback 50% to shadow with primary modern is forward; with primary legacy, or from modern 100%, it is not")
	}
}
