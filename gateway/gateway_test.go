package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// server is a minimal local XMPP server built from the s2s package: it
// accepts S2S for its domain and sends through a pool.
type server struct {
	domain  string
	ln      net.Listener
	dial    s2s.Dialer // how it reaches other servers (nil: TCP)
	srv     *s2s.Server
	pool    *s2s.Pool
	mu      sync.Mutex // guards got and bounced
	got     []s2s.Stanza
	bounced []string
}

func newServer(t *testing.T, domain, secret string) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &server{domain: domain, ln: ln}
}

// start wires the server to its gateway's S2S address.
func (s *server) start(ctx context.Context, t *testing.T, gw string, secret string, wg *sync.WaitGroup) {
	resolve := func(d string) (string, error) {
		if d == s.domain {
			return s.ln.Addr().String(), nil
		}
		return gw, nil // every other domain is through the gateway
	}
	s.srv = s2s.NewServer(s2s.ServerConfig{
		Hosts:   func(d string) bool { return d == s.domain },
		Resolve: resolve,
		Secret:  secret,
		Dial:    s.dial,
		Deliver: func(st s2s.Stanza) {
			s.mu.Lock()
			s.got = append(s.got, st)
			s.mu.Unlock()
		},
	})
	s.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve,
		Secret:  secret,
		Dial:    s.dial,
		Bounce: func(st s2s.Stanza, cond string) {
			s.mu.Lock()
			s.bounced = append(s.bounced, cond)
			s.mu.Unlock()
		},
	})
	wg.Add(2)
	go func() { defer wg.Done(); s.srv.Serve(ctx, s.ln) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.pool.Close() }()
}

func (s *server) received() []s2s.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]s2s.Stanza(nil), s.got...)
}

var quiet = slog.New(slog.DiscardHandler)

type pair struct {
	ga, gb *Gateway
	a, b   *server
}

// newServersAndConfig starts local servers a.test and b.test and returns
// them with a gateway pair configuration serving them.
func newServersAndConfig(t *testing.T) (a, b *server, pc PairConfig) {
	t.Helper()
	a = newServer(t, "a.test", "")
	b = newServer(t, "b.test", "")
	pc, err := NewPairConfig(map[string]string{"a.test": a.ln.Addr().String()}, map[string]string{"b.test": b.ln.Addr().String()}, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	return a, b, pc
}

func startPair(t *testing.T, ctx context.Context, wg *sync.WaitGroup) *pair {
	t.Helper()
	a, b, pc := newServersAndConfig(t)
	pc.A.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.B.Link.BatchWindow.Duration = 10 * time.Millisecond
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: lnB})
	if err != nil {
		t.Fatal(err)
	}
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lnB.Addr().String())
	}})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); ga.Run(ctx) }()
	go func() { defer wg.Done(); gb.Run(ctx) }()
	a.start(ctx, t, ga.S2SAddr().String(), "secret-of-a.test-0123", wg)
	b.start(ctx, t, gb.S2SAddr().String(), "secret-of-b.test-0123", wg)
	return &pair{ga, gb, a, b}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func msg(from, to string, i int) s2s.Stanza {
	raw := fmt.Sprintf("<message from='%s' to='%s' type='chat' id='m%d'><body>hello %d</body></message>", from, to, i, i)
	st, err := s2s.ParseStanza([]byte(raw))
	if err != nil {
		panic(err)
	}
	return st
}

// TestStanzasCrossBothWaysInOrder runs the pair in memory in a synctest
// bubble: every stanza crosses exactly once and in order, which is checked
// again after a minute of virtual time in which nothing more may arrive.
func TestStanzasCrossBothWaysInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startMemPair(t)
		const n = 200
		for i := 0; i < n; i++ {
			p.a.pool.Send(msg("alice@a.test/x", "bob@b.test", i))
			p.b.pool.Send(msg("bob@b.test/y", "alice@a.test", i))
		}
		check := func(when string) {
			t.Helper()
			for name, s := range map[string]*server{"b.test": p.b, "a.test": p.a} {
				got := s.received()
				if len(got) != n {
					t.Fatalf("%s: %s got %d stanzas, want %d", when, name, len(got), n)
				}
				for i, st := range got {
					if st.ID != fmt.Sprintf("m%d", i) {
						t.Fatalf("%s: %s stanza %d has id %s", when, name, i, st.ID)
					}
				}
			}
		}
		time.Sleep(time.Second) // virtual: link up, a few 10 ms batches each way
		synctest.Wait()
		check("after a second")
		time.Sleep(time.Minute) // would a duplicate show up?
		synctest.Wait()
		check("a minute later")
		sa := p.ga.Snapshot()
		if sa.Out.Stanzas["message"] != n || sa.In.Stanzas["message"] != n {
			t.Errorf("gateway a counted out %v in %v", sa.Out.Stanzas, sa.In.Stanzas)
		}
		if sa.Out.RawBytes == 0 || sa.Out.LinkBytes >= sa.Out.RawBytes || sa.Out.WireBytes <= sa.Out.LinkBytes {
			t.Errorf("implausible bytes: raw %d link %d wire %d", sa.Out.RawBytes, sa.Out.LinkBytes, sa.Out.WireBytes)
		}
		t.Logf("a→b: raw %d link %d wire %d (%.1fx)", sa.Out.RawBytes, sa.Out.LinkBytes, sa.Out.WireBytes, sa.Out.Ratio())
	})
}

func TestUnreachableLocalServerBounces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startMemPair(t)
		// b.test's server stops listening: gateway b cannot deliver.
		p.b.ln.Close()
		p.a.pool.Send(msg("alice@a.test/x", "bob@b.test", 1))
		time.Sleep(time.Minute) // virtual: the link comes up, b's attempts fail, the bounce crosses back
		synctest.Wait()
		bounced := 0
		for _, st := range p.a.received() {
			if st.Type == "error" && st.ID == "m1" {
				bounced++
			}
		}
		if bounced != 1 {
			t.Fatalf("a.test got %d bounces of m1, want 1: %v", bounced, p.a.received())
		}
	})
}

func TestUnknownDomainRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startMemPair(t)
		p.a.pool.Send(msg("alice@a.test/x", "carol@elsewhere.test", 1))
		time.Sleep(time.Second) // virtual
		synctest.Wait()
		p.a.mu.Lock()
		bounced := len(p.a.bounced)
		p.a.mu.Unlock()
		if bounced == 0 {
			t.Fatal("not refused")
		}
		if s := p.ga.Snapshot(); s.Events["stream-error:host-unknown"] == 0 {
			t.Errorf("refusal not counted: %v", s.Events)
		}
	})
}
