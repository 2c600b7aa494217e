package link

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"
)

type sink struct {
	mu  sync.Mutex // guards got
	got []string
}

func (s *sink) deliver(b [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range b {
		s.got = append(s.got, string(st))
	}
}

func (s *sink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func keys(t *testing.T) (ed25519.PrivateKey, ed25519.PrivateKey) {
	a, err := linkkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := linkkey.GenerateKey()
	return a, b
}

func tlsPair(t *testing.T, a, b ed25519.PrivateKey) (ca, cb Config) {
	ta, err := TLSConfig(a, b.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := TLSConfig(b, a.Public().(ed25519.PublicKey))
	return Config{TLS: ta}, Config{TLS: tb}
}

// killer is a TCP proxy whose connections the test can cut.
type killer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns
	conns  []net.Conn
}

func (k *killer) run() {
	for {
		c, err := k.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", k.target)
		if err != nil {
			c.Close()
			continue
		}
		k.mu.Lock()
		k.conns = append(k.conns, c, u)
		k.mu.Unlock()
		go func() { copyClose(u, c) }()
		go func() { copyClose(c, u) }()
	}
}

func copyClose(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (k *killer) cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

func TestLinkOverTCPSurvivesCuts(t *testing.T) {
	ka, kb := keys(t)
	ca, cb := tlsPair(t, ka, kb)
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnP, _ := net.Listen("tcp", "127.0.0.1:0")
	k := &killer{ln: lnP, target: lnB.Addr().String()}
	go k.run()
	defer lnP.Close()

	var atA, atB sink
	ca.Dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lnP.Addr().String())
	}
	ca.Deliver, ca.ReconnectMin = atA.deliver, 20*time.Millisecond
	ca.Session.BatchWindow = 5 * time.Millisecond
	cb.Listener, cb.Deliver = lnB, atB.deliver
	cb.Session.BatchWindow = 5 * time.Millisecond
	cb.Session.AckDelay = 20 * time.Millisecond
	ca.Session.AckDelay = 20 * time.Millisecond
	la, err := New(ca)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := New(cb)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); la.Run(ctx) }()
	go func() { defer wg.Done(); lb.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	const n = 2000
	for i := 0; i < n; i++ {
		if err := la.Send(Item{Data: fmt.Appendf(nil, "<message id='a%d'/>", i)}); err != nil {
			t.Fatal(err)
		}
		if err := lb.Send(Item{Data: fmt.Appendf(nil, "<message id='b%d'/>", i)}); err != nil {
			t.Fatal(err)
		}
		if i%400 == 399 {
			time.Sleep(30 * time.Millisecond)
			k.cut()
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for (atA.len() < n || atB.len() < n) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	check := func(name string, s *sink, prefix string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.got) != n {
			t.Fatalf("%s received %d stanzas, want %d", name, len(s.got), n)
		}
		for i, g := range s.got {
			if want := fmt.Sprintf("<message id='%s%d'/>", prefix, i); g != want {
				t.Fatalf("%s stanza %d = %s, want %s (lost, duplicated or reordered)", name, i, g, want)
			}
		}
	}
	check("B", &atB, "a")
	check("A", &atA, "b")
	st := la.Stats()
	t.Logf("A: connects=%d resumes=%d epochs=%d out=%+v wire=%d", st.Connects, st.Resumes, st.EpochChanges, st.Out, st.WireOut.Bytes())
	if st.Connects < 2 {
		t.Errorf("expected reconnects, got %d connects", st.Connects)
	}
	if st.WireOut.Bytes() <= st.Out.LinkBytes {
		t.Errorf("wire bytes %d not above link bytes %d", st.WireOut.Bytes(), st.Out.LinkBytes)
	}
}

func TestWrongPeerKeyRefused(t *testing.T) {
	ka, kb := keys(t)
	stranger, _ := linkkey.GenerateKey()
	_, cb := tlsPair(t, ka, kb)
	cs, _ := tlsPair(t, stranger, kb)
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	var atB sink
	cb.Listener, cb.Deliver = lnB, atB.deliver
	lb, _ := New(cb)
	var atS sink
	cs.Deliver = atS.deliver
	cs.Dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lnB.Addr().String())
	}
	ls, _ := New(cs)
	ls.Send(Item{Data: []byte("<message id='evil'/>")})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	go ls.Run(ctx)
	lb.Run(ctx)
	if st := lb.Stats(); st.Connects != 0 || st.HandshakeFailures == 0 || atB.len() != 0 {
		t.Fatalf("stranger got in: %+v", st)
	}
}
