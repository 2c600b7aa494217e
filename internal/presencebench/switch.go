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
//
// # Figures
//
// `make presence-bench` on 2026-11-30 (commit e2f0f18, 2-core machine):
//
//	profile    mode        login ms     relogin ms   login bytes  logout bytes  storm bytes     storm ms
//	vhf-9600   direct         80750          82259        116222         47296       472424       239567
//	vhf-9600   isthmus           82             75           608           460         3833         9758
//	bgan-64k   direct         14064          12740        116092         47400       472060        36923
//	bgan-64k   isthmus          122             96           657           356         3793         9763
//
//	login_presence_ms profile=vhf-9600 direct=81504 isthmus=78 speedup=1044.9
//	login_storm_link_bytes profile=vhf-9600 direct=472424 isthmus=3833 ratio=123.3
//	login_presence_ms profile=bgan-64k direct=13402 isthmus=109 speedup=123.0
//	login_storm_link_bytes profile=bgan-64k direct=472060 isthmus=3793 ratio=124.5
//
// The storm through the pair is 41 mirror stanzas (one per storm user's
// broadcast to its 20 contacts; nothing else crosses: every probe is
// answered from the mirror). The users log in 250 ms apart; with the link's
// presence window (link.presence_window, 1 s) about four of them share a
// frame and its TLS record, TCP/IP headers and ack. Before that window
// (commit 1340469) each left alone and the storm cost 7349 B (64x): of about
// 180 bytes per login only 60 were the compressed stanza.
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
