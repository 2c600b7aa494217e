package prosodytest

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestOverrideToListener: outgoing S2S for an overridden domain reaches a
// plain TCP listener of ours (as it will reach an isthmus gateway), and the
// stream it opens is for that domain.
func TestOverrideToListener(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := Start(t, Options{
		Domain:    "a.test",
		Users:     map[string]string{"alice": "pw"},
		Overrides: map[string]string{"gw.test": l.Addr().String()},
	})
	alice, err := Dial(ctx, t, a, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SendMessage(ctx, "someone@gw.test", "m1", "hello"); err != nil {
		t.Fatal(err)
	}

	type header struct {
		text string
		err  error
	}
	got := make(chan header, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- header{err: err}
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		// Each chunk ends at a '>': the one holding "<stream:stream" ends
		// with the stream header.
		var b strings.Builder
		for {
			chunk, err := r.ReadString('>')
			b.WriteString(chunk)
			if err != nil {
				got <- header{text: b.String(), err: err}
				return
			}
			if strings.Contains(chunk, "<stream:stream") {
				break
			}
		}
		got <- header{text: b.String()}
	}()
	select {
	case h := <-got:
		if h.err != nil {
			t.Fatalf("reading stream header: %v (got %q)", h.err, h.text)
		}
		for _, want := range []string{"to='gw.test'", "from='a.test'", "jabber:server"} {
			if !strings.Contains(h.text, want) {
				t.Errorf("stream header %q lacks %s", h.text, want)
			}
		}
	case <-ctx.Done():
		t.Fatal("prosody never connected to the override address")
	}
}

// TestStopAndCrash: Stop is clean and idempotent; a server that died under
// the test is reported by Stop.
func TestStopAndCrash(t *testing.T) {
	Require(t)
	s := Start(t, Options{Domain: "a.test"})
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", s.C2SAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("c2s port %s still accepts after Stop", s.C2SAddr)
	}
	if !strings.Contains(s.Log(), "Shutdown complete") {
		t.Errorf("log lacks clean shutdown:\n%s", s.Log())
	}

	s2 := Start(t, Options{Domain: "b.test"})
	if err := s2.proc.Process().Kill(); err != nil {
		t.Fatal(err)
	}
	<-s2.proc.Done()
	if err := s2.Stop(); err == nil {
		t.Error("Stop of a killed server returned nil")
	}
}

// TestPortTaken: Prosody keeps running when it cannot bind a port, and the
// port still accepts (someone else's listener); Start must notice from the
// log and fail rather than hand out a server that is not there.
func TestPortTaken(t *testing.T) {
	Require(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r, Options{Domain: "a.test", C2SPort: taken, S2SPort: FreePort(t)})
	}()
	<-done
	t.Logf("fatal: %s", r.fatal)
	if !strings.Contains(r.fatal, "in use") {
		t.Errorf("Start with a taken c2s port: fatal %q, want an address-in-use failure", r.fatal)
	}
}
