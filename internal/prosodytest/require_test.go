package prosodytest

import (
	"fmt"
	"runtime"
	"testing"
)

// recordTB records Skip and Fatal instead of acting on them.
type recordTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordTB) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

func runRequire(t *testing.T) *recordTB {
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(r)
	}()
	<-done
	return r
}

func TestRequireWithoutProsody(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no prosody here

	t.Setenv("CI", "")
	if r := runRequire(t); r.skipped == "" || r.fatal != "" {
		t.Errorf("without CI: skipped %q, fatal %q; want a skip", r.skipped, r.fatal)
	}
	t.Setenv("CI", "true")
	if r := runRequire(t); r.fatal == "" || r.skipped != "" {
		t.Errorf("with CI: skipped %q, fatal %q; want a failure", r.skipped, r.fatal)
	}
}

func TestRequireWithProsody(t *testing.T) {
	if _, ok := Available(); !ok {
		t.Skip("prosody not installed")
	}
	if r := runRequire(t); r.skipped != "" || r.fatal != "" {
		t.Errorf("skipped %q, fatal %q; want neither", r.skipped, r.fatal)
	}
}
