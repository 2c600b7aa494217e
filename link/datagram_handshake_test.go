package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
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

// orderedKeys returns (larger, smaller) by X25519 public key.
func orderedKeys(t *testing.T) (ed25519.PrivateKey, ed25519.PrivateKey) {
	ka, kb := keys(t)
	k, _ := dgram.KeysFromEd25519(ka, kb.Public().(ed25519.PublicKey))
	if bytes.Compare(k.Static.Public, k.Peer) < 0 {
		ka, kb = kb, ka
	}
	return ka, kb
}

func writeState(t *testing.T, path string, priv ed25519.PrivateKey, peer ed25519.PrivateKey) {
	k, _ := dgram.KeysFromEd25519(priv, peer.Public().(ed25519.PublicKey))
	if err := os.WriteFile(path, fmt.Appendf(nil, "isthmus datagram state 1\npeer %x\naccepted 1\nsent 1\n", k.Peer), 0o600); err != nil {
		t.Fatal(err)
	}
}

type dropTo struct {
	net.PacketConn
	bad string
}

func (d dropTo) WriteTo(p []byte, a net.Addr) (int, error) {
	if a.String() == d.bad {
		return len(p), nil // an address no one answers from any more
	}
	return d.PacketConn.WriteTo(p, a)
}

// startPair runs Links made from ca and cb, delivering into fresh sinks.
func startPair(t *testing.T, ca, cb Config) *emuPair {
	p := &emuPair{atA: &sink{}, atB: &sink{}, transport: ca.Transport}
	ca.Deliver, cb.Deliver = p.atA.deliver, p.atB.deliver
	p.start(t, ca, cb)
	return p
}

// Both sides dial; the larger key defers to its own handshake and ignores
// the smaller's MsgInit, but records its stamp: replayed later, it is
// refused as stale and the live session stays.
func TestDatagramTieBreakMsgInitReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prof, _ := emu.ParseProfile("vhf-9600,loss=0")
		el := emu.NewLink(prof, 1)
		defer el.Close()
		kL, kS := orderedKeys(t)
		ca, cb := tlsPair(t, kL, kS) // a = larger key, b = smaller
		pa, pb := el.PacketPipe()
		recB := &recorder{PacketConn: pb}
		ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
		ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, pa, pb.LocalAddr(), kS.Public().(ed25519.PublicKey)
		cb.Transport, cb.PacketConn, cb.PeerAddr, cb.PeerKey = TransportDatagram, recB, pa.LocalAddr(), kL.Public().(ed25519.PublicKey)
		dir := t.TempDir()
		ca.DatagramState, cb.DatagramState = filepath.Join(dir, "a"), filepath.Join(dir, "b")
		writeState(t, ca.DatagramState, kL, kS) // complete records (accepted 1)
		writeState(t, cb.DatagramState, kS, kL)
		p := startPair(t, ca, cb)
		defer func() { p.cancel(); el.Close(); p.wg.Wait() }()
		p.waitUp(t, 2*time.Minute)
		p.a.Send(Item{Data: []byte("a0"), Pair: "x"})
		time.Sleep(30 * time.Second)
		h0 := p.a.Stats().Datagram.Handshakes
		recB.mu.Lock()
		replay := recB.inits[0]
		recB.mu.Unlock()
		pb.WriteTo(replay, pa.LocalAddr()) // the eavesdropper's replay, from b's address
		time.Sleep(50 * time.Millisecond)
		t1 := time.Now()
		p.a.Send(Item{Data: []byte("a1"), Pair: "x"})
		for p.atB.len() < 2 && time.Since(t1) < 5*time.Minute {
			time.Sleep(10 * time.Millisecond)
		}
		s := p.a.Stats().Datagram
		t.Logf("a: handshakes %d -> %d, stale %d; a1 delivered after %v (RTT %v)", h0, s.Handshakes, s.StaleInits, time.Since(t1), 2*prof.Delay)
		if s.Handshakes != h0 || s.StaleInits != 1 {
			t.Errorf("the replayed MsgInit replaced a's live session (handshakes %d -> %d, StaleInits %d)", h0, s.Handshakes, s.StaleInits)
		}
	})
}

// A responder restarted with its state file missing (deleted, state_dir
// lost) has no record: a recorded MsgInit stays pending, never current.
func TestDatagramMissingStateReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prof, _ := emu.ParseProfile("vhf-9600,loss=0")
		el := emu.NewLink(prof, 1)
		defer el.Close()
		ka, kb := keys(t)
		ca, cb := tlsPair(t, ka, kb)
		pa, pb := el.PacketPipe()
		rec := &recorder{PacketConn: keepOpen{pa}}
		ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
		ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, rec, pb.LocalAddr(), kb.Public().(ed25519.PublicKey)
		cb.Transport, cb.PacketConn, cb.PeerKey = TransportDatagram, keepOpen{pb}, ka.Public().(ed25519.PublicKey)
		dir := t.TempDir()
		ca.DatagramState, cb.DatagramState = filepath.Join(dir, "a"), filepath.Join(dir, "b")
		// b's earlier life: a's MsgInit recorded, then b's state file lost.
		p := startPair(t, ca, cb)
		p.waitUp(t, 2*time.Minute)
		p.cancel()
		p.wg.Wait()
		os.Remove(cb.DatagramState)
		cb.Deliver = (&sink{}).deliver
		b, err := New(cb)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(ctx) }()
		defer func() { cancel(); el.Close(); wg.Wait() }()
		rec.mu.Lock()
		replay := rec.inits[0]
		rec.mu.Unlock()
		pa.WriteTo(replay, pb.LocalAddr())
		time.Sleep(time.Second)
		s := b.Stats().Datagram
		st, _ := os.ReadFile(cb.DatagramState)
		t.Logf("b: %+v wireIn %+v state %q", s, b.Stats().WireIn, st)
		if s.Handshakes != 0 {
			t.Errorf("b without a state file made the replayed MsgInit's session current (handshakes %d, stale %d, pending replaced %d)", s.Handshakes, s.StaleInits, s.PendingReplaced)
		}
	})
}

// The larger key's side has a handshake outstanding towards an address
// that no longer answers: it stops deferring to it and answers the peer.
func TestDatagramTieBreakStaleAddress(t *testing.T) {
	for _, largerStale := range []bool{true, false} {
		t.Run(fmt.Sprint("larger-stale=", largerStale), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				prof, _ := emu.ParseProfile("vhf-9600,loss=0")
				el := emu.NewLink(prof, 1)
				defer el.Close()
				kL, kS := orderedKeys(t)
				ka, kb := kL, kS
				if !largerStale {
					ka, kb = kS, kL
				}
				ca, cb := tlsPair(t, ka, kb)
				pa, pb := el.PacketPipe()
				stale := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5269}
				ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
				ca.ReconnectMin, ca.ReconnectMax = 100*time.Millisecond, 5*time.Second
				ca.Transport, ca.PacketConn, ca.PeerAddr, ca.PeerKey = TransportDatagram, dropTo{pa, stale.String()}, stale, kb.Public().(ed25519.PublicKey)
				cb.Transport, cb.PacketConn, cb.PeerAddr, cb.PeerKey = TransportDatagram, pb, pa.LocalAddr(), ka.Public().(ed25519.PublicKey)
				p := startPair(t, ca, cb)
				defer func() { p.cancel(); el.Close(); p.wg.Wait() }()
				// b's MsgInits must not be ignored by a for good.
				t.Logf("up after %v", p.waitUp(t, 2*time.Minute))
			})
		})
	}
}

// injector hands its Link one forged datagram from a spoofed source first.
type injector struct {
	dropTo
	once sync.Once
	from net.Addr
}

func (j *injector) ReadFrom(p []byte) (n int, a net.Addr, err error) {
	injected := false
	j.once.Do(func() { injected = true })
	if injected {
		return copy(p, bytes.Repeat([]byte{0x00}, 20)), j.from, nil
	}
	return j.dropTo.ReadFrom(p)
}

// One forged datagram: a listening gateway with the larger key and no
// session starts a handshake towards the spoofed source; the real peer's
// MsgInits still get answered.
func TestDatagramForgedSourceNoDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prof, _ := emu.ParseProfile("vhf-9600,loss=0")
		el := emu.NewLink(prof, 1)
		defer el.Close()
		kL, kS := orderedKeys(t)
		ca, cb := tlsPair(t, kL, kS) // a listens, larger key
		pa, pb := el.PacketPipe()
		spoof := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 4444}
		ca.RateBPS, cb.RateBPS = prof.RateBPS, prof.RateBPS
		ca.ReconnectMin, ca.ReconnectMax = 100*time.Millisecond, 5*time.Second
		ca.Transport, ca.PacketConn, ca.PeerKey = TransportDatagram, &injector{dropTo: dropTo{pa, spoof.String()}, from: spoof}, kS.Public().(ed25519.PublicKey)
		cb.Transport, cb.PacketConn, cb.PeerAddr, cb.PeerKey = TransportDatagram, pb, pa.LocalAddr(), kL.Public().(ed25519.PublicKey)
		p := startPair(t, ca, cb)
		defer func() { p.cancel(); el.Close(); p.wg.Wait() }()
		p.waitUp(t, 2*time.Minute) // despite one forged datagram
	})
}
