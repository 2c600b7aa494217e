package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress shows one self-overwriting status line for a long operation
// (dictionary training, bench over large captures, the demo) when its
// writer is a terminal, and nothing otherwise, so logs and pipes stay
// clean. Updates are drawn at most every 100ms; Done clears the line.
type progress struct {
	w  io.Writer  // nil: quiet
	mu sync.Mutex // guards the following fields
	t  time.Time  // last draw
	on bool       // a line is drawn
}

// newProgress returns a progress line on w if w is a terminal.
func newProgress(w io.Writer) *progress {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return &progress{w: w}
	}
	return &progress{}
}

// Set draws the status line (rate limited).
func (p *progress) Set(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.t) >= 100*time.Millisecond {
		p.t = now
		p.on = true
		fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	}
}

// Done clears the line.
func (p *progress) Done() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
		p.on = false
	}
}
