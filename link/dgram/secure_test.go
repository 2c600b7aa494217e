package dgram

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
)

func pairKeys(t *testing.T) (a, b Keys) {
	t.Helper()
	pa, ka, _ := ed25519.GenerateKey(nil)
	pb, kb, _ := ed25519.GenerateKey(nil)
	var err error
	if a, err = KeysFromEd25519(ka, pb); err != nil {
		t.Fatal(err)
	}
	if b, err = KeysFromEd25519(kb, pa); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestKeysFromEd25519(t *testing.T) {
	a, b := pairKeys(t)
	pub, err := curve25519.X25519(a.Static.Private, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, a.Static.Public) || !bytes.Equal(pub, b.Peer) {
		t.Fatalf("derived X25519 public key differs from the Montgomery form of the Ed25519 key")
	}
	if _, err := KeysFromEd25519(make([]byte, 5), nil); err == nil {
		t.Fatal("short private key accepted")
	}
}

func handshake(t *testing.T, now time.Time, a, b Keys, cfg ChannelConfig) (ca, cb *Channel) {
	t.Helper()
	in, err := Initiate(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Msg) != HandshakeSize {
		t.Fatalf("MsgInit is %d bytes, want %d", len(in.Msg), HandshakeSize)
	}
	cb, resp, err := Respond(now, b, in.Msg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != HandshakeSize {
		t.Fatalf("MsgResp is %d bytes, want %d", len(resp), HandshakeSize)
	}
	ca, err = in.Complete(now, resp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cb
}

func TestHandshakeWrongKey(t *testing.T) {
	a, b := pairKeys(t)
	_, c := pairKeys(t) // c pins someone else
	in, _ := Initiate(a)
	if _, _, err := Respond(time.Now(), c, in.Msg, ChannelConfig{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("responder with another pinned key: err %v, want ErrAuth", err)
	}
	_, resp, err := Respond(time.Now(), b, in.Msg, ChannelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	resp[10] ^= 1
	if _, err := in.Complete(time.Now(), resp, ChannelConfig{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered MsgResp: err %v, want ErrAuth", err)
	}
	if _, _, err := Respond(time.Now(), b, in.Msg[:20], ChannelConfig{}); !errors.Is(err, ErrShort) {
		t.Fatalf("truncated MsgInit: err %v, want ErrShort", err)
	}
}

// TestChannelRekeyReplay sends datagrams both ways across several rekeys
// and checks that replayed, forged and truncated datagrams are rejected and
// counted, and that a datagram of the previous key phase arriving late is
// still accepted.
func TestChannelRekeyReplay(t *testing.T) {
	a, b := pairKeys(t)
	now := time.Unix(1000, 0)
	cfg := ChannelConfig{RekeyDatagrams: 10, Window: 64}
	ca, cb := handshake(t, now, a, b, cfg)
	var pnA, pnB uint64
	var late []byte
	for i := range 100 {
		now = now.Add(100 * time.Millisecond)
		msg := fmt.Appendf(nil, "a%d", i)
		d := ca.Seal(now, FlagData, pnA, 1+int(pnA%2), msg)
		if i == 44 {
			late = d // delivered after the next rekey
			pnA++
			continue
		}
		// Forged (before the real one arrives, so not a replay): one
		// bit flipped in the header, or in the ciphertext.
		for _, at := range []int{0, len(d) - 1} {
			f := bytes.Clone(d)
			f[at] ^= FlagAck
			if _, _, _, err := cb.Open(now, f); !errors.Is(err, ErrAuth) {
				t.Fatalf("forged datagram %d (bit at %d): %v", i, at, err)
			}
		}
		pn, fl, p, err := cb.Open(now, d)
		if err != nil || pn != pnA || fl != FlagData || !bytes.Equal(p, msg) {
			t.Fatalf("datagram %d: pn %d flags %#x %q %v", i, pn, fl, p, err)
		}
		// The peer acknowledges: A may rekey again.
		ca.Acked(pnA)
		pnA++
		// Replay.
		if _, _, _, err := cb.Open(now, d); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed datagram %d: %v", i, err)
		}
		// Truncated.
		if _, _, _, err := cb.Open(now, d[:1+TagSize]); !errors.Is(err, ErrShort) {
			t.Fatalf("truncated datagram %d: %v", i, err)
		}
		// The other way.
		back := cb.Seal(now, FlagAck, pnB, 2, []byte{byte(i)})
		if _, _, p, err := ca.Open(now, back); err != nil || p[0] != byte(i) {
			t.Fatalf("datagram %d from B: %v", i, err)
		}
		cb.Acked(pnB)
		pnB++
		if i == 50 {
			if _, _, p, err := cb.Open(now, late); err != nil || !bytes.Equal(p, []byte("a44")) {
				t.Fatalf("late datagram of the previous key phase: %q %v", p, err)
			}
		}
	}
	if ca.Stats.Rekeys < 5 || cb.Stats.PeerRekeys != ca.Stats.Rekeys || cb.Stats.Rekeys < 5 || ca.Stats.PeerRekeys != cb.Stats.Rekeys {
		t.Errorf("rekeys: A %d (B saw %d), B %d (A saw %d)", ca.Stats.Rekeys, cb.Stats.PeerRekeys, cb.Stats.Rekeys, ca.Stats.PeerRekeys)
	}
	if cb.Stats.Replayed != 99 || cb.Stats.Truncated != 99 || cb.Stats.Forged != 198 {
		t.Errorf("B counted %+v, want 99 replayed, 99 truncated, 198 forged", cb.Stats)
	}
	// Older than the window.
	if _, _, _, err := cb.Open(now, ca.Seal(now, FlagData, pnA-80, 2, nil)); !errors.Is(err, ErrReplay) {
		t.Errorf("datagram below the replay window: %v", err)
	}
}

func TestDecodeTruncated(t *testing.T) {
	for _, c := range []struct {
		expect, trunc uint64
		bits          int
		want          uint64
	}{
		{0, 5, 8, 5},
		{250, 2, 8, 258},
		{258, 250, 8, 250},
		{0xa82f30ea, 0x9b32, 16, 0xa82f9b32},
		{1 << 16, 0xffff, 16, 0xffff},
	} {
		if got := DecodeTruncated(c.expect, c.trunc, c.bits); got != c.want {
			t.Errorf("DecodeTruncated(%#x, %#x, %d) = %#x, want %#x", c.expect, c.trunc, c.bits, got, c.want)
		}
	}
}
