package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// memPair is a gateway pair and its two local servers entirely in memory,
// for tests run inside a testing/synctest bubble (real sockets are not
// durably blocking there): the servers and the gateways' S2S edges meet on
// an emu.Net, the gateways' link is an emu link. Both are of the "lan"
// profile (no rate limit, no delay), so virtual time passes only by the
// code's own timers. A test waits with synctest.Wait, and shows that
// nothing more arrives by letting virtual time pass (time.Sleep) and
// waiting again.
type memPair struct {
	*pair
	lan, el *emu.Link // the local network; the gateways' link
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// In-memory addresses: the servers and gateways of each side.
const (
	memServerA  = "10.0.1.1:5269"
	memGatewayA = "10.0.1.2:5269"
	memServerB  = "10.0.2.1:5269"
	memGatewayB = "10.0.2.2:5269"
)

// startMemPair starts the pair in the calling test's bubble; it stops at
// the test's cleanup. Like startPair, batch windows are 10 ms.
func startMemPair(t *testing.T) *memPair {
	t.Helper()
	prof, ok := emu.Lookup("lan")
	if !ok {
		t.Fatal("no emu profile lan")
	}
	p := &memPair{lan: emu.NewLink(prof, 1), el: emu.NewLink(prof, 2)}
	mn := emu.NewNet(p.lan)
	a := &server{domain: "a.test", dial: mn.Dial}
	b := &server{domain: "b.test", dial: mn.Dial}
	var err error
	if a.ln, err = mn.Listen(memServerA); err != nil {
		t.Fatal(err)
	}
	if b.ln, err = mn.Listen(memServerB); err != nil {
		t.Fatal(err)
	}
	pc, err := NewPairConfig(map[string]string{"a.test": memServerA}, map[string]string{"b.test": memServerB}, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	pc.A.Link.BatchWindow.Duration = 10 * time.Millisecond
	pc.B.Link.BatchWindow.Duration = 10 * time.Millisecond
	s2sA, err := mn.Listen(memGatewayA)
	if err != nil {
		t.Fatal(err)
	}
	s2sB, err := mn.Listen(memGatewayB)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: p.el.Listen(), S2SListener: s2sB, S2SDial: mn.Dial})
	if err != nil {
		t.Fatal(err)
	}
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: p.el.Dial, S2SListener: s2sA, S2SDial: mn.Dial})
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go func() { defer p.wg.Done(); ga.Run(ctx) }()
	go func() { defer p.wg.Done(); gb.Run(ctx) }()
	a.start(ctx, t, memGatewayA, "secret-of-a.test-0123", &p.wg)
	b.start(ctx, t, memGatewayB, "secret-of-b.test-0123", &p.wg)
	p.pair = &pair{ga, gb, a, b}
	t.Cleanup(p.stop)
	return p
}

// stop ends the gateways and servers, then the emulated links.
func (p *memPair) stop() {
	p.cancel()
	p.wg.Wait()
	p.el.Close()
	p.lan.Close()
}
