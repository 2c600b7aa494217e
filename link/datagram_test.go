package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/dgram"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// checkInOrder fails unless got is exactly want (no loss, duplicate or
// reordering).
func checkInOrder(t *testing.T, what string, got []string, want int, tag string) {
	t.Helper()
	lost, dup, reord := 0, 0, 0
	seen := map[string]bool{}
	last := -1
	for _, g := range got {
		var i int
		if _, err := fmt.Sscanf(g, tag+"%d", &i); err != nil {
			t.Fatalf("%s: unexpected stanza %q", what, g)
		}
		if seen[g] {
			dup++
			continue
		}
		seen[g] = true
		if i < last {
			reord++
		}
		last = i
	}
	lost = want - len(seen)
	if lost != 0 || dup != 0 || reord != 0 || len(got) != want {
		t.Errorf("%s: %d delivered of %d: lost %d, duplicated %d, reordered %d", what, len(got), want, lost, dup, reord)
	}
}

// TestDatagramLossAndOutage runs the datagram transport over the emulator
// with 5% loss both ways and a 2-minute outage during traffic: every stanza
// arrives once and in order, and the outage costs no handshake.
func TestDatagramLossAndOutage(t *testing.T) {
	for _, prof := range []string{"vhf-9600,loss=0.05", "iridium-2400,loss=0.05"} {
		t.Run(prof, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Keys change every 20 s: rekeying goes on under loss and through the outage.
				p := newEmuPair(t, TransportDatagram, prof, 0, func(c *Config) { c.RekeyInterval = 20 * time.Second })
				defer p.close()
				p.waitUp(t, time.Minute)
				const n = 300
				for i := range n {
					if i == n/3 {
						p.el.Down(2 * time.Minute)
					}
					p.a.Send(Item{Data: fmt.Appendf(nil, "a%d", i), Pair: "x"})
					p.b.Send(Item{Data: fmt.Appendf(nil, "b%d", i), Pair: "y"})
					time.Sleep(700 * time.Millisecond)
				}
				deadline := time.Now().Add(10 * time.Minute)
				for (p.atB.len() < n || p.atA.len() < n) && time.Now().Before(deadline) {
					time.Sleep(time.Second)
				}
				checkInOrder(t, "a→b", p.atB.snapshot(), n, "a")
				checkInOrder(t, "b→a", p.atA.snapshot(), n, "b")
				sa, sb := p.a.Stats(), p.b.Stats()
				if sa.Datagram.Handshakes != 1 || sb.Datagram.Handshakes != 1 {
					t.Errorf("handshakes: a %d, b %d; want 1 each (none after the outage)", sa.Datagram.Handshakes, sb.Datagram.Handshakes)
				}
				// The last key change may ride on a final ack that was
				// lost (acks are not sent again): the peer is then one
				// behind, never more (a side rekeys again only once the
				// peer acknowledged its current key).
				behind := func(sent, seen uint64) bool { return seen != sent && seen+1 != sent }
				if sa.Datagram.Rekeys < 5 || behind(sa.Datagram.Rekeys, sb.Datagram.PeerRekeys) || behind(sb.Datagram.Rekeys, sa.Datagram.PeerRekeys) {
					t.Errorf("rekeys: a %d (b saw %d), b %d (a saw %d)", sa.Datagram.Rekeys, sb.Datagram.PeerRekeys, sb.Datagram.Rekeys, sa.Datagram.PeerRekeys)
				}
				if sa.Datagram.Retransmits == 0 || sb.Datagram.Retransmits == 0 {
					t.Errorf("no retransmissions with 5%% loss: a %+v b %+v", sa.Datagram, sb.Datagram)
				}
				es := p.el.Stats()
				t.Logf("a: %+v wire out %d B in %d datagrams; link %d B", sa.Datagram, sa.WireOut.Bytes(), sa.WireOut.Datagrams, sa.Out.LinkBytes)
				t.Logf("b: %+v wire out %d B in %d datagrams; link %d B", sb.Datagram, sb.WireOut.Bytes(), sb.WireOut.Datagrams, sb.Out.LinkBytes)
				t.Logf("emu: %+v", es)
			})
		})
	}
}

// TestDatagramFragmentation sends stanzas several times the MTU.
func TestDatagramFragmentation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEmuPair(t, TransportDatagram, "vhf-9600,loss=0.05", 0, func(c *Config) { c.DatagramMTU = 300 })
		defer p.close()
		p.waitUp(t, time.Minute)
		rng := rand.New(rand.NewPCG(1, 2))
		const n = 20
		var sent []string
		for i := range n {
			big := make([]byte, 5000)
			for j := range big {
				big[j] = byte('a' + rng.IntN(26)) // does not compress much
			}
			sent = append(sent, fmt.Sprintf("a%d %s", i, big))
			p.a.Send(Item{Data: []byte(sent[i]), Pair: "x"})
		}
		for deadline := time.Now().Add(5 * time.Minute); p.atB.len() < n && time.Now().Before(deadline); {
			time.Sleep(time.Second)
		}
		got := p.atB.snapshot()
		if len(got) != n {
			t.Fatalf("%d of %d large stanzas delivered", len(got), n)
		}
		for i, g := range got {
			if g != sent[i] {
				t.Fatalf("stanza %d garbled (%d bytes)", i, len(g))
			}
		}
		if sa := p.a.Stats(); sa.WireOut.Datagrams < sa.Out.LinkBytes/(300-28) {
			t.Errorf("%d datagrams for %d link bytes: not fragmented at the MTU", sa.WireOut.Datagrams, sa.Out.LinkBytes)
		}
	})
}

// rebind reports its datagrams as coming from another address after Flip,
// as a NAT rebinding or satellite handover would, and records where the
// side replies.
type rebind struct {
	net.PacketConn
	mu      sync.Mutex
	flipped bool
	sentTo  map[string]int
}

func (r *rebind) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := r.PacketConn.ReadFrom(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flipped && err == nil {
		a = emu.Addr("rebound:" + a.String())
	}
	return n, a, err
}

func (r *rebind) WriteTo(p []byte, a net.Addr) (int, error) {
	r.mu.Lock()
	r.sentTo[a.String()]++
	r.mu.Unlock()
	return r.PacketConn.WriteTo(p, a)
}

func (r *rebind) flip() {
	r.mu.Lock()
	r.flipped = true
	r.mu.Unlock()
}

// TestDatagramAddressChange: b accepts the peer's datagrams from a new
// address and replies there, without a handshake.
func TestDatagramAddressChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prof, _ := emu.ParseProfile("vhf-9600")
		el := emu.NewLink(prof, 1)
		defer el.Close()
		ka, kb := keys(t)
		ca, cb := tlsPair(t, ka, kb)
		pa, pb := el.PacketPipe()
		rb := &rebind{PacketConn: pb, sentTo: map[string]int{}}
		atA, atB := &sink{}, &sink{}
		ca.Deliver, cb.Deliver = atA.deliver, atB.deliver
		ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
		ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, pa, pb.LocalAddr(), kb.Public().(ed25519.PublicKey)
		cb.Transport, cb.PacketConn, cb.PeerKey = TransportDatagram, rb, ka.Public().(ed25519.PublicKey)
		a, _ := New(ca)
		b, err := New(cb)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Add(2)
		go func() { defer wg.Done(); a.Run(ctx) }()
		go func() { defer wg.Done(); b.Run(ctx) }()
		for !(a.Stats().Up && b.Stats().Up) {
			time.Sleep(10 * time.Millisecond)
		}
		a.Send(Item{Data: []byte("a0"), Pair: "x"})
		time.Sleep(5 * time.Second)
		rb.flip()
		a.Send(Item{Data: []byte("a1"), Pair: "x"})
		time.Sleep(time.Second)
		b.Send(Item{Data: []byte("b0"), Pair: "y"})
		time.Sleep(10 * time.Second)
		checkInOrder(t, "a→b", atB.snapshot(), 2, "a")
		checkInOrder(t, "b→a", atA.snapshot(), 1, "b")
		sb := b.Stats()
		if sb.Datagram.AddressChanges != 1 || sb.Datagram.Handshakes != 1 {
			t.Errorf("b: %d address changes, %d handshakes; want 1 and 1", sb.Datagram.AddressChanges, sb.Datagram.Handshakes)
		}
		rb.mu.Lock()
		defer rb.mu.Unlock()
		if rb.sentTo["rebound:"+pa.LocalAddr().String()] == 0 {
			t.Errorf("b never replied to the new address: %v", rb.sentTo)
		}
	})
}

// keepOpen is a carrier that outlives the Link using it (a restarted
// gateway gets the same UDP port again).
type keepOpen struct{ net.PacketConn }

func (keepOpen) Close() error { return nil }

// recorder is a carrier that keeps copies of the handshake datagrams it
// sends (an eavesdropper's recording, for replay).
type recorder struct {
	net.PacketConn
	mu    sync.Mutex
	inits [][]byte
}

func (r *recorder) WriteTo(p []byte, a net.Addr) (int, error) {
	if dgram.IsHandshake(p, dgram.MsgInit) {
		r.mu.Lock()
		r.inits = append(r.inits, bytes.Clone(p))
		r.mu.Unlock()
	}
	return r.PacketConn.WriteTo(p, a)
}

// TestDatagramRestart restarts the accepting side (no spool) and, before
// anything else reaches it, replays the dialling side's first MsgInit to it
// as an eavesdropper could. With the stamps kept in state files the
// restarted side refuses the replay (StaleInits) and one Noise handshake of
// at most 200 bytes both ways, started by the restarted side when the
// peer's datagrams no longer open, brings the link back in one round trip:
// the peer vouches for the new stamp and answers with its HELLO right
// behind MsgResp, so the restarted side has it as soon as its handshake
// ends. With stamps in memory only, the restarted side keeps the replayed
// MsgInit's session pending (never current: no one confirms it), and the
// peer waits for the restarted side's first datagram before it replaces
// its session: one round trip more.
func TestDatagramRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		name := map[bool]string{true: "state-file", false: "memory"}[persist]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRestart(t, persist) })
		})
	}
}

func testRestart(t *testing.T, persist bool) {
	prof, _ := emu.ParseProfile("vhf-9600")
	el := emu.NewLink(prof, 1)
	defer el.Close()
	ka, kb := keys(t)
	ca, cb := tlsPair(t, ka, kb)
	pa, pb := el.PacketPipe()
	rec := &recorder{PacketConn: pa}
	atA, atB := &sink{}, &sink{}
	ca.Deliver, cb.Deliver = atA.deliver, atB.deliver
	ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
	ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, rec, pb.LocalAddr(), kb.Public().(ed25519.PublicKey)
	cb.Transport, cb.PacketConn, cb.PeerKey = TransportDatagram, keepOpen{pb}, ka.Public().(ed25519.PublicKey)
	if persist {
		dir := t.TempDir()
		ca.DatagramState, cb.DatagramState = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	}
	if testing.Verbose() {
		ca.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "a")
		cb.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("side", "b")
	}
	a, err := New(ca)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := func(c Config) (*Link, func()) {
		l, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); defer close(done); l.Run(lctx) }()
		return l, func() { lcancel(); <-done }
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
	t0 := time.Now()
	b, stopB := start(cb)
	for !(a.Stats().Up && b.Stats().Up) {
		time.Sleep(10 * time.Millisecond)
	}
	rtt, ser := 2*prof.Delay, txTime(2*(dgram.InitSize+dgram.RespSize+2*UDPHeaderBytes), prof.RateBPS)
	t.Logf("first connection: a up after %v (RTT %v), %d handshake bytes", time.Since(t0), rtt,
		a.Stats().Datagram.HandshakeBytes+b.Stats().Datagram.HandshakeBytes)
	if hs := a.Stats().Datagram.HandshakeBytes + b.Stats().Datagram.HandshakeBytes; hs > 200 {
		t.Errorf("first handshake: %d bytes both ways", hs)
	}
	a.Send(Item{Data: []byte("a0"), Pair: "x"})
	time.Sleep(5 * time.Second)
	stopB()
	hsA := a.Stats().Datagram.HandshakeBytes
	b2, stopB2 := start(cb)
	defer stopB2()
	rec.mu.Lock()
	replay := rec.inits[0]
	rec.mu.Unlock()
	if _, err := pa.WriteTo(replay, pb.LocalAddr()); err != nil { // the replay goes first
		t.Fatal(err)
	}
	time.Sleep(rtt)
	t1 := time.Now()
	a.Send(Item{Data: []byte("a1"), Pair: "x"})
	b2.Send(Item{Data: []byte("b0"), Pair: "y"})
	for i := 0; i < 600 && (len(atB.snapshot()) < 2 || atA.len() < 1); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(t1)
	if got := atB.snapshot(); len(got) != 2 || got[1] != "a1" {
		t.Fatalf("after b restarted, b has %q", got)
	}
	checkInOrder(t, "b→a", atA.snapshot(), 1, "b")
	sa, sb := a.Stats(), b2.Stats()
	hs := sa.Datagram.HandshakeBytes - hsA + sb.Datagram.HandshakeBytes
	t.Logf("restart (%s): b's handshake ended %v before the peer's HELLO; both stanzas delivered %v after they were sent (RTT %v), %d handshake bytes both ways",
		map[bool]string{true: "state file", false: "memory"}[persist], sb.HelloWait, took, rtt, hs)
	t.Logf("a %+v\nb %+v", sa.Datagram, sb.Datagram)
	if hs > 200 || sb.Datagram.Handshakes != 1 {
		t.Errorf("restart: %d handshake bytes both ways, %d handshakes at b", hs, sb.Datagram.Handshakes)
	}
	if persist {
		if sb.Datagram.StaleInits != 1 {
			t.Errorf("restarted b refused %d replayed MsgInits, want 1", sb.Datagram.StaleInits)
		}
		// The peer's HELLO came right behind MsgResp: no round trip
		// after the handshake.
		if sb.HelloWait > ser {
			t.Errorf("restarted b waited %v for the peer's HELLO after its handshake, want ≤ %v", sb.HelloWait, ser)
		}
	}
	// In memory, b answered the replay (a MsgResp no one can use) but did
	// not run its session: the one handshake counted above is b's own.
}

// TestDatagramIdleAndOutage measures, in virtual time, an idle hour's wire
// bytes (default keepalive) and how soon a stanza queued during a 10-minute
// outage arrives once the link returns, with no handshake. The emulator's
// carrier reports the link's return (LinkStater), so the stanza goes at
// once: within one delay and its serialization time.
func TestDatagramIdleAndOutage(t *testing.T) {
	for _, prof := range []string{"vhf-9600", "iridium-2400"} {
		t.Run(prof, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newEmuPair(t, TransportDatagram, prof, 0)
				defer p.close()
				p.waitUp(t, time.Minute)
				p.a.Send(Item{Data: []byte("a0"), Pair: "x"})
				time.Sleep(time.Minute)
				w0 := p.wire()
				time.Sleep(time.Hour)
				idle := p.wire() - w0
				if idle > 1024 {
					t.Errorf("idle hour: %d wire bytes, want ≤ 1024", idle)
				}
				took, hs, perMin := outage(p, 5*time.Minute)
				t.Logf("%s: idle hour %d B; after a 10-minute outage the queued stanza arrived %v after the link returned, %d handshake bytes, %.0f B per outage minute sent meanwhile",
					prof, idle, took.Round(time.Millisecond), hs, perMin)
				if hs != 0 || p.atB.len() != 2 {
					t.Errorf("after the outage: %d handshake bytes, %d stanzas", hs, p.atB.len())
				}
				if st := p.a.Stats().Datagram; st.LinkUps != 1 {
					t.Errorf("a saw the link return %d times, want 1", st.LinkUps)
				}
				// One way, and the datagram's serialization (under 100 bytes).
				if limit := p.rtt/2 + txTime(100, p.el.Profile().RateBPS); took > limit {
					t.Errorf("queued stanza took %v after the link returned, want ≤ %v", took, limit)
				}
			})
		})
	}
}

// outage takes p's link down for 10 minutes with a stanza queued at a
// after queueAt, and returns how long after the link's return it arrived,
// the handshake bytes spent, and the wire bytes per minute both sides sent
// into the outage while the stanza waited (before it, with nothing
// unacknowledged, neither side probes).
func outage(p *emuPair, queueAt time.Duration) (took time.Duration, hs uint64, perMin float64) {
	hs0 := p.a.Stats().Datagram.HandshakeBytes + p.b.Stats().Datagram.HandshakeBytes
	n := p.atB.len()
	p.el.Down(10 * time.Minute)
	time.Sleep(queueAt)
	w0 := p.wire()
	p.a.Send(Item{Data: []byte("a1"), Pair: "x"})
	time.Sleep(10*time.Minute - queueAt)
	perMin = float64(p.wire()-w0) / (10*time.Minute - queueAt).Minutes()
	back := time.Now()
	for p.atB.len() < n+1 && time.Since(back) < 5*time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	took = time.Since(back)
	hs = p.a.Stats().Datagram.HandshakeBytes + p.b.Stats().Datagram.HandshakeBytes - hs0
	return took, hs, perMin
}

// plainCarrier hides the emulator's LinkState: a UDP socket, which does
// not know when the link returns.
type plainCarrier struct{ net.PacketConn }

// TestDatagramProbeCap measures, over a carrier that does not report the
// link's state (UDP), what the probe cap (Config.DatagramMaxProbe) trades:
// wire bytes both sides send into an outage while a stanza waits, against
// how late that stanza arrives after the link returns (mean and worst of
// five 10-minute outages, the stanza queued at different phases of the
// probes). go test -run DatagramProbeCap -v ./link/ prints the table.
func TestDatagramProbeCap(t *testing.T) {
	// Without loss: a lost probe would add a probe interval.
	for _, prof := range []string{"vhf-9600,loss=0", "iridium-2400,loss=0"} {
		for _, cap := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second} {
			synctest.Test(t, func(t *testing.T) {
				p := newEmuPair(t, TransportDatagram, prof, 0, func(c *Config) {
					c.PacketConn = plainCarrier{c.PacketConn}
					c.DatagramMaxProbe = cap
				})
				defer p.close()
				p.waitUp(t, time.Minute)
				p.a.Send(Item{Data: []byte("a0"), Pair: "x"})
				time.Sleep(time.Minute)
				const runs = 5
				var sum, worst time.Duration
				var bytes float64
				for i := range runs {
					took, hs, perMin := outage(p, 5*time.Minute+time.Duration(i)*cap/runs)
					sum, worst, bytes = sum+took, max(worst, took), bytes+perMin/runs
					if hs != 0 {
						t.Errorf("%d handshake bytes after an outage", hs)
					}
					time.Sleep(time.Minute)
				}
				t.Logf("%s, probe cap %v: %.0f B per outage minute (both sides, while data waits), first stanza after the link returned: mean %v, worst %v",
					prof, cap, bytes, (sum / runs).Round(10*time.Millisecond), worst.Round(10*time.Millisecond))
				// A probe (~50 B) per cap from a, and b's acks; the first
				// probe after the return is at most a probe interval away
				// (the cap, or a round trip and four deviations if longer;
				// the RTT samples include the peer's ack delay), then a
				// round trip for its ack and one more way for the data.
				prof := p.el.Profile()
				rtt := p.rtt + 2*txTime(100, prof.RateBPS)
				rto := 3*rtt + 2*dgram.DefaultAckDelay(DatagramMTU, prof.RateBPS, UDPHeaderBytes)
				if limit := 2 * 60 / max(cap, rto).Seconds() * 50; bytes > limit {
					t.Errorf("%.0f B per outage minute, want ≤ %.0f", bytes, limit)
				}
				if limit := max(cap, rto) + 2*rtt; worst > limit {
					t.Errorf("first stanza up to %v after the link returned, want ≤ %v", worst, limit)
				}
				if st := p.a.Stats().Datagram; st.LinkUps != 0 {
					t.Errorf("a plain carrier reported %d link returns", st.LinkUps)
				}
			})
		}
	}
}

// TestDatagramFixedCost measures, in virtual time over the emulator, the
// wire bytes around each frame (wire − link bytes, per frame sent, acks
// included in the direction they travel) for TCP and the datagram
// transport, with the same chat traffic both ways: go test -run
// DatagramFixedCost -v ./link/ prints the table.
func TestDatagramFixedCost(t *testing.T) {
	for _, prof := range []string{"vhf-9600", "iridium-2400"} {
		cost, ratio := map[string]float64{}, map[string]float64{}
		for _, tr := range []string{TransportTCP, TransportDatagram} {
			synctest.Test(t, func(t *testing.T) {
				p := newEmuPair(t, tr, prof, 0)
				defer p.close()
				p.waitUp(t, time.Minute)
				s0a, s0b := p.a.Stats(), p.b.Stats()
				period := time.Second
				if prof == "iridium-2400" {
					period = 3 * time.Second
				}
				raw := 0
				for i := range int(5 * time.Minute / period) {
					for _, l := range []*Link{p.a, p.b} {
						m := drainMessage(i)
						raw += len(m)
						l.Send(Item{Data: m, Pair: "p"})
					}
					time.Sleep(period)
				}
				time.Sleep(30 * time.Second)
				sa, sb := p.a.Stats(), p.b.Stats()
				wire := sa.WireOut.Bytes() + sb.WireOut.Bytes() - s0a.WireOut.Bytes() - s0b.WireOut.Bytes()
				lb := sa.Out.LinkBytes + sb.Out.LinkBytes - s0a.Out.LinkBytes - s0b.Out.LinkBytes
				frames := sa.Out.Frames + sb.Out.Frames - s0a.Out.Frames - s0b.Out.Frames
				cost[tr] = float64(wire-lb) / float64(frames)
				ratio[tr] = float64(raw) / float64(wire)
				t.Logf("%s %s: raw÷wire %.2f, %d frames, fixed cost %.1f B/frame; datagram stats a %+v",
					tr, prof, float64(raw)/float64(wire), frames, cost[tr], sa.Datagram)
			})
		}
		// 49 B per datagram (28 IPv4/UDP, 21 header, tag, ack and fragment
		// number) against about 100 B per TCP segment and its share of
		// ACKs; fewer standalone ACK frames besides (but then the remaining
		// frames carry the odd ack-only datagram's cost: compare totals).
		if ratio[TransportDatagram] < 1.3*ratio[TransportTCP] || cost[TransportDatagram] > 0.7*cost[TransportTCP] {
			t.Errorf("%s: raw÷wire %.2f over datagrams, %.2f over TCP; fixed cost per frame %.1f B and %.1f B",
				prof, ratio[TransportDatagram], ratio[TransportTCP], cost[TransportDatagram], cost[TransportTCP])
		}
	}
}

// TestDatagramJoin: on iridium-2400, stanzas that come while a datagram
// holds the pacer (DatagramMinWire, up to half the round trip) share the
// next datagram; without the hold each batch pays a datagram of its own.
func TestDatagramJoin(t *testing.T) {
	run := func(minWire int) (datagrams, frames uint64, joined uint64) {
		synctest.Test(t, func(t *testing.T) {
			p := newEmuPair(t, TransportDatagram, "iridium-2400,loss=0", 0, func(c *Config) { c.DatagramMinWire = minWire })
			defer p.close()
			p.waitUp(t, time.Minute)
			p.a.Send(Item{Data: []byte("a0"), Pair: "x"}) // a round trip sampled
			time.Sleep(10 * time.Second)
			s0 := p.a.Stats()
			for i := range 40 {
				p.a.Send(Item{Data: fmt.Appendf(nil, "a%d", i+1), Pair: "x"})
				time.Sleep(150 * time.Millisecond) // each batch window closes alone
			}
			time.Sleep(30 * time.Second)
			checkInOrder(t, "a→b", p.atB.snapshot(), 41, "a")
			s := p.a.Stats()
			datagrams, frames, joined = s.WireOut.Datagrams-s0.WireOut.Datagrams, s.Out.Frames-s0.Out.Frames, s.Datagram.Joined
		})
		return
	}
	d, f, j := run(0)
	dn, fn, jn := run(-1)
	t.Logf("40 stanzas 150 ms apart on iridium-2400: with the hold %d frames in %d datagrams (%d joined); without %d frames in %d datagrams (%d joined)", f, d, j, fn, dn, jn)
	if j == 0 || d >= dn || jn != 0 {
		t.Errorf("with the hold %d datagrams (%d joined), without %d (%d joined): want fewer with it", d, j, dn, jn)
	}
}

// TestDatagramStateUnreadable: a corrupt state file does not stop the
// link; it runs as without a record, and the first confirmed handshake
// writes the file again.
func TestDatagramStateUnreadable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var path string
		p := newEmuPair(t, TransportDatagram, "vhf-9600,loss=0", 0, func(c *Config) {
			if c.PeerAddr == nil { // b, the responder
				path = c.DatagramState
				if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		})
		defer p.close()
		p.waitUp(t, time.Minute)
		p.a.Send(Item{Data: []byte("a0"), Pair: "x"})
		for p.atB.len() < 1 {
			time.Sleep(10 * time.Millisecond)
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(b, []byte("isthmus datagram state 1\npeer ")) || bytes.Contains(b, []byte("accepted 0\n")) {
			t.Errorf("state file after the first handshake: %q %v", b, err)
		}
	})
}
