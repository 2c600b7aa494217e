package s2s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder of events, deliveries and bounces for one side.
type sink struct {
	mu      sync.Mutex // guards the following fields
	events  []Event
	got     []Stanza
	bounced []string // "cond id"
	ch      chan struct{}
}

func newSink() *sink { return &sink{ch: make(chan struct{}, 1000)} }

func (k *sink) event(e Event) {
	k.mu.Lock()
	k.events = append(k.events, e)
	k.mu.Unlock()
	k.poke()
}
func (k *sink) deliver(st Stanza) {
	k.mu.Lock()
	k.got = append(k.got, st)
	k.mu.Unlock()
	k.poke()
}
func (k *sink) bounce(st Stanza, cond string) {
	k.mu.Lock()
	k.bounced = append(k.bounced, cond+" "+st.ID)
	k.mu.Unlock()
	k.poke()
}
func (k *sink) poke() {
	select {
	case k.ch <- struct{}{}:
	default:
	}
}

// wait polls cond until it holds or the deadline passes.
func (k *sink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second) // a liveness bound: a 17 MB stanza under -race on a loaded machine takes seconds
	for {
		k.mu.Lock()
		ok := cond()
		k.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-k.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (k *sink) hasEvent(kind, local, remote string) bool {
	return slices.ContainsFunc(k.events, func(e Event) bool {
		return string(e.Kind) == kind && (local == "" || e.Local == local) && (remote == "" || e.Remote == remote)
	})
}

type side struct {
	domain string
	srv    *Server
	pool   *Pool
	sink   *sink
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// newPair starts two sides, a.test and b.test, resolving to each other.
func newPair(t *testing.T, secretA, secretB string, lim Limits) (a, b *side) {
	t.Helper()
	addrs := map[string]string{}
	var mu sync.Mutex
	resolve := func(d string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if a, ok := addrs[d]; ok {
			return a, nil
		}
		return "", fmt.Errorf("no address for %s", d)
	}
	mk := func(domain, secret string) *side {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		k := newSink()
		sd := &side{domain: domain, sink: k, addr: l.Addr().String(), done: make(chan error, 1)}
		mu.Lock()
		addrs[domain] = sd.addr
		mu.Unlock()
		sd.srv = NewServer(ServerConfig{
			Hosts:   func(d string) bool { return d == domain },
			Resolve: resolve,
			Secret:  secret,
			Limits:  lim,
			Deliver: k.deliver,
			Events:  k.event,
		})
		sd.pool = NewPool(PoolConfig{Resolve: resolve, Secret: secret, Limits: lim, Bounce: k.bounce, Events: k.event})
		ctx, cancel := context.WithCancel(context.Background())
		sd.cancel = cancel
		go func() { sd.done <- sd.srv.Serve(ctx, l) }()
		t.Cleanup(func() {
			sd.pool.Close()
			cancel()
			select {
			case err := <-sd.done:
				if err != nil {
					t.Errorf("Serve %s: %v", domain, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Serve %s did not return", domain)
			}
		})
		return sd
	}
	return mk("a.test", secretA), mk("b.test", secretB)
}

func msg(from, to, id, body string) Stanza {
	raw := fmt.Sprintf("<message from='%s' to='%s' id='%s' type='chat'><body>%s</body><x xmlns='urn:x'  a=\"1\"/></message>", from, to, id, body)
	st, err := ParseStanza([]byte(raw))
	if err != nil {
		panic(err)
	}
	return st
}

func TestDialbackBothWays(t *testing.T) {
	a, b := newPair(t, "s3cret", "s3cret", Limits{})
	const n = 50
	var wantAB, wantBA []Stanza
	for i := range n {
		st := msg("alice@a.test/r", "bob@b.test", fmt.Sprint("ab", i), fmt.Sprintf("hi &amp; %d", i))
		wantAB = append(wantAB, st)
		a.pool.Send(st)
		st = msg("bob@b.test", "alice@a.test", fmt.Sprint("ba", i), fmt.Sprint("yo ", i))
		wantBA = append(wantBA, st)
		b.pool.Send(st)
	}
	b.sink.wait(t, "a->b stanzas", func() bool { return len(b.sink.got) >= n })
	a.sink.wait(t, "b->a stanzas", func() bool { return len(a.sink.got) >= n })
	check := func(got, want []Stanza) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d stanzas, want %d", len(got), len(want))
		}
		for i := range want {
			if string(got[i].Raw) != string(want[i].Raw) || got[i].ID != want[i].ID || got[i].From != want[i].From || got[i].To != want[i].To || got[i].Type != "chat" {
				t.Fatalf("stanza %d: got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}
	b.sink.mu.Lock()
	check(b.sink.got, wantAB)
	if !b.sink.hasEvent("in-auth", "b.test", "a.test") {
		t.Errorf("b has no in-auth event: %+v", b.sink.events)
	}
	b.sink.mu.Unlock()
	a.sink.mu.Lock()
	check(a.sink.got, wantBA)
	for _, kind := range []string{"in-auth", "verify-answer"} {
		if !a.sink.hasEvent(kind, "", "") {
			t.Errorf("a has no %s event: %+v", kind, a.sink.events)
		}
	}
	if !a.sink.hasEvent("out-auth", "a.test", "b.test") {
		t.Errorf("a has no out-auth event")
	}
	if len(a.sink.bounced) != 0 {
		t.Errorf("bounces: %v", a.sink.bounced)
	}
	a.sink.mu.Unlock()

	// The stream is reused: one out-open on a.
	a.pool.Send(msg("alice@a.test", "bob@b.test", "again", "x"))
	b.sink.wait(t, "one more", func() bool { return len(b.sink.got) == n+1 })
	a.sink.mu.Lock()
	opens := 0
	for _, e := range a.sink.events {
		if e.Kind == "out-open" {
			opens++
		}
	}
	a.sink.mu.Unlock()
	if opens != 1 {
		t.Errorf("%d out-open events, want 1", opens)
	}
}

func TestWrongSecretBounces(t *testing.T) {
	// The receiving server checks the key with the originating domain's
	// server, so a Pool whose secret differs from its own Server's fails.
	a, b := newPair(t, "right", "right", Limits{})
	b.pool.Close()
	b.pool = NewPool(PoolConfig{Resolve: func(string) (string, error) { return a.addr, nil }, Secret: "wrong", Bounce: b.sink.bounce, Events: b.sink.event})
	defer b.pool.Close()
	b.pool.Send(msg("bob@b.test", "alice@a.test", "m1", "x"))
	b.pool.Send(msg("bob@b.test", "alice@a.test", "m2", "x"))
	b.sink.wait(t, "bounces", func() bool { return len(b.sink.bounced) == 2 })
	b.sink.mu.Lock()
	if b.sink.bounced[0] != "remote-server-not-found m1" || b.sink.bounced[1] != "remote-server-not-found m2" {
		t.Errorf("bounced %v", b.sink.bounced)
	}
	if !b.sink.hasEvent("out-fail", "b.test", "a.test") {
		t.Errorf("no out-fail event")
	}
	b.sink.mu.Unlock()
	a.sink.mu.Lock()
	defer a.sink.mu.Unlock()
	if len(a.sink.got) != 0 {
		t.Errorf("a got %d stanzas", len(a.sink.got))
	}
	if !a.sink.hasEvent("in-refused", "a.test", "b.test") {
		t.Errorf("a has no in-refused event: %+v", a.sink.events)
	}
}

func TestUnreachableBounces(t *testing.T) {
	k := newSink()
	p := NewPool(PoolConfig{
		Resolve: func(d string) (string, error) { return "", errors.New("nowhere") },
		Bounce:  k.bounce,
	})
	defer p.Close()
	p.Send(msg("a@a.test", "b@c.test", "1", "x"))
	k.wait(t, "bounce", func() bool { return len(k.bounced) == 1 })
	if k.bounced[0] != "remote-server-not-found 1" {
		t.Errorf("bounced %v", k.bounced)
	}
}

func TestQueueLimit(t *testing.T) {
	k := newSink()
	block := make(chan struct{})
	p := NewPool(PoolConfig{
		Resolve: func(d string) (string, error) { <-block; return "", errors.New("nowhere") },
		Bounce:  k.bounce,
		Limits:  Limits{QueueLimit: 3},
	})
	for i := range 5 {
		p.Send(msg("a@a.test", "b@c.test", fmt.Sprint(i), "x"))
	}
	k.mu.Lock()
	got := slices.Clone(k.bounced)
	k.mu.Unlock()
	if !slices.Equal(got, []string{"resource-constraint 3", "resource-constraint 4"}) {
		t.Errorf("bounced %v", got)
	}
	close(block)
	p.Close()
	if len(k.bounced) != 5 {
		t.Errorf("bounced %v", k.bounced)
	}
}
