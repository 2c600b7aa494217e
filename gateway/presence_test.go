package gateway

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// TestPresenceMirrorSurvivesRestart is issue 7, item 2, at the gateway: the
// mirror is written to its state file when the gateway stops and restored
// when it starts again, so that a local user's probe is answered from it at
// once, even with the peer gone (with a <delay/> stamp, since the link is
// down).
func TestPresenceMirrorSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	a, b, pc := newServersAndConfig(t)
	pc.A.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.B.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.A.StateDir = t.TempDir()
	pc.A.Presence.StateFile = "presence.json"

	// First life of gateway a, with b, behind a switchable S2S address so
	// that server a reaches the second life at the same address.
	gwAddr := newForward(t)
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: lnB})
	if err != nil {
		t.Fatal(err)
	}
	dialB := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lnB.Addr().String())
	}
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: dialB})
	if err != nil {
		t.Fatal(err)
	}
	ctx1, stop1 := context.WithCancel(ctx)
	var wg1 sync.WaitGroup
	wg1.Add(2)
	go func() { defer wg1.Done(); ga.Run(ctx1) }()
	go func() { defer wg1.Done(); gb.Run(ctx1) }()
	gwAddr.set(ga.S2SAddr().String())
	a.start(ctx, t, gwAddr.addr(), "secret-of-a.test-0123", &wg)
	b.start(ctx, t, gb.S2SAddr().String(), "secret-of-b.test-0123", &wg)

	pres := func(raw string) s2s.Stanza {
		st, err := s2s.ParseStanza([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	b.pool.Send(pres("<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>"))
	waitFor(t, "carol's presence at a.test", 10*time.Second, func() bool {
		return len(a.received()) == 1
	})
	stop1()
	wg1.Wait()
	if _, err := os.Stat(filepath.Join(pc.A.StateDir, "presence.json")); err != nil {
		t.Fatalf("no state file after stop: %v", err)
	}

	// Second life of gateway a: the peer is gone for good.
	pc.A.S2S.Listen = "127.0.0.1:0"
	ga2, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: func(ctx context.Context) (net.Conn, error) {
		return nil, net.ErrClosed
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, in, ok := ga2.PresenceCounters(); !ok || in != 1 {
		t.Fatalf("restored mirror: in=%d ok=%v, want 1 entry", in, ok)
	}
	wg.Add(1)
	go func() { defer wg.Done(); ga2.Run(ctx) }()
	gwAddr.set(ga2.S2SAddr().String())

	a.pool.Send(pres("<presence from='ann@a.test/r' to='carol@b.test' type='probe'/>"))
	waitFor(t, "the answer from the restored mirror", 10*time.Second, func() bool {
		return len(a.received()) == 2
	})
	got := a.received()[1]
	raw := string(got.Raw)
	if got.From != "carol@b.test/phone" || got.To != "ann@a.test/r" || !strings.Contains(raw, "<show>away</show>") || !strings.Contains(raw, "urn:xmpp:delay") {
		t.Errorf("answer from the restored mirror: %s", raw)
	}
	if c, _, _, _ := ga2.PresenceCounters(); c.ProbesAnswered != 1 {
		t.Errorf("probes answered: %d, want 1", c.ProbesAnswered)
	}
}

// forward is a TCP forwarder to a target that can change; changing it
// closes the connections forwarded so far.
type forward struct {
	ln net.Listener

	mu     sync.Mutex // guards the following fields
	target string
	conns  []net.Conn
}

func newForward(t *testing.T) *forward {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forward{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			target := f.target
			f.mu.Unlock()
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, d)
			f.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); pipe(d, c) }()
			go func() { defer wg.Done(); pipe(c, d) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.set("")
		wg.Wait()
	})
	return f
}

func pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
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

func (f *forward) addr() string { return f.ln.Addr().String() }

func (f *forward) set(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = target
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// TestMirrorStanzasNotCoalesced: mirror stanzas are changes to a recipient
// set, not a contact's whole state, so the link must not let a newer one
// for the same contact replace a queued older one. Two fan-outs of one
// contact wait while the link is down; both must reach their recipients.
func TestMirrorStanzasNotCoalesced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	a, b, pc := newServersAndConfig(t)
	pc.A.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.B.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.A.Link.ReconnectMin.Duration = 50 * time.Millisecond
	pc.A.Link.ReconnectMax.Duration = 100 * time.Millisecond
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	var mu sync.Mutex
	linkUp := false
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		up := linkUp
		mu.Unlock()
		if !up {
			return nil, net.ErrClosed
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", lnB.Addr().String())
	}})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: lnB})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); ga.Run(ctx) }()
	go func() { defer wg.Done(); gb.Run(ctx) }()
	a.start(ctx, t, ga.S2SAddr().String(), "secret-of-a.test-0123", &wg)
	b.start(ctx, t, gb.S2SAddr().String(), "secret-of-b.test-0123", &wg)

	fanouts := func() uint64 {
		c, _, _, _ := ga.PresenceCounters()
		return c.FanoutSent
	}
	for i, to := range []string{"ann@b.test", "dan@b.test"} {
		st, err := s2s.ParseStanza([]byte("<presence from='carol@a.test/phone' to='" + to + "'><show>away</show></presence>"))
		if err != nil {
			t.Fatal(err)
		}
		a.pool.Send(st)
		waitFor(t, "fan-out "+to, 10*time.Second, func() bool { return fanouts() == uint64(i+1) })
	}
	if d := ga.link.Stats().Drops.Coalesced; d != 0 {
		t.Errorf("%d mirror stanzas coalesced away in the link queue", d)
	}
	mu.Lock()
	linkUp = true
	mu.Unlock()
	waitFor(t, "carol's presence at ann and dan", 10*time.Second, func() bool {
		got := map[string]bool{}
		for _, st := range b.received() {
			if st.From == "carol@a.test/phone" && st.Type == "" {
				got[st.To] = true
			}
		}
		return got["ann@b.test"] && got["dan@b.test"]
	})
	if _, _, in, _ := gb.PresenceCounters(); in != 1 {
		t.Errorf("b's mirror holds %d entries, want 1", in)
	}
	// Delivered by the fan-outs themselves, not repaired by the digest
	// exchange at link-up.
	if c, _, _, _ := ga.PresenceCounters(); c.SyncRepaired != 0 {
		t.Errorf("%d entries repaired after link-up", c.SyncRepaired)
	}
}

// TestSyncDoesNotOvertakeMirror: when the link comes up, the mirror sends a
// digest of its table while fan-outs still wait in the link queue (a slow
// link, a burst of presence). The digest must arrive after them, or the
// tables look different and every entry crosses a second time as a repair.
func TestSyncDoesNotOvertakeMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("emulated slow link")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	a, b, pc := newServersAndConfig(t)
	prof, err := emu.ParseProfile("bgan-64k,loss=0,delay=50ms,rate=8000")
	if err != nil {
		t.Fatal(err)
	}
	pc.A.Link.RateBPS, pc.B.Link.RateBPS = prof.RateBPS, prof.RateBPS
	l := emu.NewLink(prof, 1)
	defer l.Close()
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: l.Dial})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: l.Listen()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); ga.Run(ctx) }()
	go func() { defer wg.Done(); gb.Run(ctx) }()
	a.start(ctx, t, ga.S2SAddr().String(), "secret-of-a.test-0123", &wg)
	b.start(ctx, t, gb.S2SAddr().String(), "secret-of-b.test-0123", &wg)

	waitFor(t, "the link", 30*time.Second, func() bool { return ga.Snapshot().Link.Up })
	// The mirror sees the link up within a second; meanwhile presence
	// arrives faster than the link carries it.
	const n = 150
	for i := range n {
		st, err := s2s.ParseStanza(fmt.Appendf(nil, "<presence from='c%03d@a.test/r' to='ann@b.test'><status>watch %d</status></presence>", i, i))
		if err != nil {
			t.Fatal(err)
		}
		a.pool.Send(st)
		time.Sleep(10 * time.Millisecond)
	}
	// b counts a's digest as matched, or a repairs after b's answer.
	waitFor(t, "the digest exchange", 60*time.Second, func() bool {
		cb, _, _, _ := gb.PresenceCounters()
		ca, _, _, _ := ga.PresenceCounters()
		return cb.SyncMatched > 0 || ca.SyncRepaired > 0
	})
	if c, _, _, _ := ga.PresenceCounters(); c.SyncRepaired != 0 {
		t.Errorf("after link-up: %d entries repaired (%d mirror stanzas sent for %d contacts)", c.SyncRepaired, c.FanoutSent, n)
	}
}

// TestPresenceStateWrittenOutsideLock is issue 13, item 7: the state file is
// written (and fsynced) without the lock that the S2S read path takes for
// every presence, so a slow disk does not stall local servers' streams.
func TestPresenceStateWrittenOutsideLock(t *testing.T) {
	_, _, pc := newServersAndConfig(t)
	pc.A.StateDir = t.TempDir()
	pc.A.Presence.StateFile = "presence.json"
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: func(ctx context.Context) (net.Conn, error) {
		return nil, net.ErrClosed
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := ga.mirror
	var writes, locked int
	e.write = func(path string, data []byte) error {
		writes++
		if !e.mu.TryLock() {
			locked++
		} else {
			e.mu.Unlock()
		}
		return writeFileAtomic(path, data)
	}
	st, err := s2s.ParseStanza([]byte("<presence from='ann@a.test/r' to='carol@b.test'><show>away</show></presence>"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.fromLocal(st) {
		t.Fatal("presence not taken by the mirror")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // run saves once at shutdown
	if err := e.run(ctx); err != nil {
		t.Fatal(err)
	}
	if writes == 0 {
		t.Fatal("state file not written at shutdown")
	}
	if locked != 0 {
		t.Errorf("%d of %d state writes held the mirror's lock", locked, writes)
	}
	if _, err := os.Stat(filepath.Join(pc.A.StateDir, "presence.json")); err != nil {
		t.Errorf("no state file: %v", err)
	}
}
