package link

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// emuPair runs two Links over an emulated link in the current synctest
// bubble: a dials, b accepts. opts change both sides' configurations last.
type emuPair struct {
	a, b      *Link
	atA, atB  *sink
	el        *emu.Link
	cancel    func()
	wg        sync.WaitGroup
	rtt       time.Duration
	transport string
}

func newEmuPair(t *testing.T, transport, profile string, keepalive time.Duration, opts ...func(*Config)) *emuPair {
	prof, err := emu.ParseProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := keys(t)
	ca, cb := tlsPair(t, ka, kb)
	p := &emuPair{el: emu.NewLink(prof, 1), atA: &sink{}, atB: &sink{}, rtt: 2 * prof.Delay, transport: transport}
	ca.Deliver, cb.Deliver = p.atA.deliver, p.atB.deliver
	ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
	ca.ReconnectMin, ca.ReconnectMax = 100*time.Millisecond, time.Second
	if transport == TransportDatagram {
		pa, pb := p.el.PacketPipe()
		ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, pa, pb.LocalAddr(), kb.Public().(ed25519.PublicKey)
		cb.Transport, cb.PacketConn, cb.PeerKey = TransportDatagram, pb, ka.Public().(ed25519.PublicKey)
		// Handshake stamps in state files, as a gateway keeps them.
		dir := t.TempDir()
		ca.DatagramState, cb.DatagramState = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	} else if transport == TransportQUIC {
		pa, pb := p.el.PacketPipe()
		ca.Transport, ca.PacketConn, ca.PeerAddr = TransportQUIC, pa, pb.LocalAddr()
		cb.Transport, cb.PacketConn, cb.QUICAccept = TransportQUIC, pb, true
	} else {
		ca.Dial = p.el.Dial
		cb.Listener = p.el.Listen()
	}
	for _, c := range []*Config{&ca, &cb} {
		c.Session.Keepalive = keepalive
		for _, o := range opts {
			o(c)
		}
	}
	p.start(t, ca, cb)
	return p
}

// start makes the two Links from ca and cb and runs them until p.cancel.
func (p *emuPair) start(t *testing.T, ca, cb Config) {
	t.Helper()
	var err error
	if p.a, err = New(ca); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(cb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.a.Run(ctx) }()
	go func() { defer p.wg.Done(); p.b.Run(ctx) }()
}

func (p *emuPair) close() {
	p.cancel()
	p.el.Close()
	p.wg.Wait()
}

func (p *emuPair) wire() uint64 {
	sa, sb := p.a.Stats(), p.b.Stats()
	return sa.WireOut.Bytes() + sb.WireOut.Bytes()
}

func (p *emuPair) linkBytes() uint64 {
	sa, sb := p.a.Stats(), p.b.Stats()
	return sa.Out.LinkBytes + sb.Out.LinkBytes
}

// waitUp waits (in virtual time) until both sides have the peer's HELLO.
func (p *emuPair) waitUp(t *testing.T, limit time.Duration) time.Duration {
	start := time.Now()
	for !(p.a.Stats().Up && p.b.Stats().Up) {
		if time.Since(start) > limit {
			t.Fatalf("%s: not up after %v", p.transport, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestHandshakeResumeIdleCost measures, in virtual time over the emulator,
// the cost of a first connection, of a resumed one after the link drops, and
// of an idle hour. The figures go into the package doc and the issue.
func TestHandshakeResumeIdleCost(t *testing.T) {
	for _, tr := range []string{TransportTCP, TransportQUIC} {
		for _, prof := range []string{"vhf-9600", "bgan-64k"} {
			t.Run(tr+"/"+prof, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { measure(t, tr, prof) })
			})
		}
	}
}

func measure(t *testing.T, tr, profile string) {
	// No loss for the handshake figures (loss only adds retransmissions).
	p := newEmuPair(t, tr, profile+",loss=0", 0)
	defer p.close()
	hs := p.waitUp(t, 5*time.Minute)
	time.Sleep(2 * time.Second) // the last handshake packets and acks land
	hsWire, hsLink := p.wire(), p.linkBytes()

	// Some traffic, then the link drops for 5 s and comes back.
	for i := range 20 {
		p.a.Send(Item{Data: fmt.Appendf(nil, "<message id='m%d'><body>hi</body></message>", i)})
	}
	time.Sleep(5 * time.Second)
	p.el.Down(5 * time.Second)
	time.Sleep(5 * time.Second) // the outage; TCP conns were reset; QUIC stalls
	if tr == TransportQUIC {
		// A QUIC connection survives a 5 s outage; drop it to measure a
		// reconnect, as after a longer one.
		p.a.mu.Lock()
		end := p.a.activeEnd
		p.a.mu.Unlock()
		if end != nil {
			end()
		}
	}
	w0, l0, t0 := p.wire(), p.linkBytes(), time.Now()
	for p.a.Stats().Up || p.b.Stats().Up {
		time.Sleep(10 * time.Millisecond)
	}
	p.waitUp(t, 5*time.Minute)
	res := time.Since(t0) // from the drop, including the redial delay
	time.Sleep(2 * time.Second)
	resWire, resLink := p.wire()-w0, p.linkBytes()-l0
	stA := p.a.Stats()

	// An idle hour.
	w1 := p.wire()
	time.Sleep(time.Hour)
	idle := p.wire() - w1

	hello := stA.HelloWait // the dialler's wait for the HELLO after the transport handshake
	t.Logf("FIGURE %s %s: first connection %d wire B, %d link B, %.2f s (%.1f RTT); resume %d wire B, %d link B (HELLOs), %.2f s (%.1f RTT) of which the session's HELLO exchange %.3f s (%.2f RTT) after the transport handshake [connects=%d, TLS resumed on %d]; idle %d B/hour (keepalive %v)",
		tr, profile, hsWire, hsLink, hs.Seconds(), float64(hs)/float64(p.rtt), resWire, resLink, res.Seconds(), float64(res)/float64(p.rtt),
		hello.Seconds(), float64(hello)/float64(p.rtt), stA.Connects, stA.TLSResumes, idle, DefaultKeepalive)
	// One round trip, plus the time the two HELLOs (TLS records of under
	// 150 bytes with headers) take to serialize. Over QUIC the server's side
	// of the handshake ends later than the client's (its tickets, tokens and
	// connection ids, and on vhf-9600 the client's Finished queued behind
	// retransmitted Initials, go first): logged, not held to this.
	if ser := txTime(2*150, p.el.Profile().RateBPS); tr == TransportTCP && hello > p.rtt+ser {
		t.Errorf("HELLO exchange took %v after the transport handshake, want ≤ 1 RTT (%v) + %v serialization", hello, p.rtt, ser)
	}
	if resLink > 100 {
		t.Errorf("resumption took %d link bytes, want ≤ 100", resLink)
	}
	// The target is for default settings on bgan-64k; vhf-9600 is held to
	// it too, so that QUIC's endless probing there (before datagrams were
	// paced) cannot come back unnoticed.
	if idle > 2048 {
		t.Errorf("idle link cost %d bytes/hour, want ≤ 2048", idle)
	}
	if p.atB.len() != 20 {
		t.Errorf("%d of 20 stanzas arrived", p.atB.len())
	}
}
