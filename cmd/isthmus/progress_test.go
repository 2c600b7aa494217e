package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Progress stays quiet when not on a terminal: in a buffer, a file or a pipe.
func TestProgressQuietOffTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b)
	p.Set("step %d", 1)
	p.Done()
	if b.Len() != 0 {
		t.Errorf("wrote %q to a buffer", b.String())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p = newProgress(f)
	p.Set("step %d", 2)
	p.Done()
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", st.Size())
	}
	// On a terminal the line is drawn and cleared: simulate with a writer
	// that counts as one.
	var tty bytes.Buffer
	p = &progress{w: &tty}
	p.Set("reading %s", "x")
	p.Set("too soon") // rate limited
	p.Done()
	if got := tty.String(); got != "\r\033[Kreading x\r\033[K" {
		t.Errorf("terminal output %q", got)
	}
}
