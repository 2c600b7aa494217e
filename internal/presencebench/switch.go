// Package presencebench measures the presence mirror against direct S2S
// with real Prosody servers on both sides (`make presence-bench`, issue 7).
//
// Prosody a.test (one user with 200 contacts on b.test, and 40 storm users
// with 20 contacts each) and Prosody b.test (the 200 contacts, all online
// with varied show, status and caps) send their S2S for the other domain to
// a switch: in "direct" mode it forwards to a link-emulator relay to the
// other Prosody (one relay per direction), in "pair" mode to the isthmus
// gateway of its side, whose link runs over the same emulated profile.
// Switching closes every connection, so Prosody reconnects by the new path.
//
// Measured per profile and mode: the time from the user's initial presence
// until its client holds all contacts' presence (first login and re-login);
// link bytes for login, logout and the login storm. Direct bytes are what
// the relays carried plus 52 bytes of TCP/IP header per segment and per
// delayed ACK; pair bytes are the gateways' wire bytes (TLS records, same
// header estimate).
package presencebench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// sw is a TCP forwarder whose target can be changed; changing it closes
// every forwarded connection.
type sw struct {
	ln net.Listener

	mu     sync.Mutex // guards the following fields
	target string
	conns  map[net.Conn]bool
}

func newSwitch(t *testing.T, ctx context.Context) *sw {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sw{ln: ln, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.serve(&wg) }()
	t.Cleanup(func() {
		ln.Close()
		s.set("")
		wg.Wait()
	})
	_ = ctx
	return s
}

func (s *sw) addr() string { return s.ln.Addr().String() }

func (s *sw) set(target string) {
	s.mu.Lock()
	s.target = target
	for c := range s.conns {
		c.Close()
	}
	s.conns = map[net.Conn]bool{}
	s.mu.Unlock()
}

func (s *sw) serve(wg *sync.WaitGroup) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		target := s.target
		s.mu.Unlock()
		if target == "" {
			c.Close()
			continue
		}
		d, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.conns[c], s.conns[d] = true, true
		s.mu.Unlock()
		wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(c, d)
		go pipe(d, c)
	}
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
