package dgram

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	in, err := Initiate(a, Stamp(now, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Msg) != InitSize {
		t.Fatalf("MsgInit is %d bytes, want %d", len(in.Msg), InitSize)
	}
	cb, resp, stamp, err := Respond(now, b, in.Msg, 0, cfg)
	if err != nil || stamp != in.Stamp {
		t.Fatalf("Respond: stamp %d (sent %d), %v", stamp, in.Stamp, err)
	}
	if len(resp) != RespSize {
		t.Fatalf("MsgResp is %d bytes, want %d", len(resp), RespSize)
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
	in, _ := Initiate(a, 1)
	if _, _, _, err := Respond(time.Now(), c, in.Msg, 0, ChannelConfig{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("responder with another pinned key: err %v, want ErrAuth", err)
	}
	_, resp, _, err := Respond(time.Now(), b, in.Msg, 0, ChannelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	resp[10] ^= 1
	if _, err := in.Complete(time.Now(), resp, ChannelConfig{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered MsgResp: err %v, want ErrAuth", err)
	}
	if _, _, _, err := Respond(time.Now(), b, in.Msg[:20], 0, ChannelConfig{}); !errors.Is(err, ErrShort) {
		t.Fatalf("truncated MsgInit: err %v, want ErrShort", err)
	}
}

// TestHandshakeReplayAfterRestart: a responder refuses a replayed MsgInit
// (stamp not above the largest accepted) even after a restart, because the
// stamp is kept in its state file; the initiator's next stamp is above the
// last even when its clock went back, because it keeps the stamps it sent.
func TestHandshakeReplayAfterRestart(t *testing.T) {
	a, b := pairKeys(t)
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	stA, err := LoadState(filepath.Join(dir, "a"), a.Peer)
	if err != nil {
		t.Fatal(err)
	}
	stB, err := LoadState(filepath.Join(dir, "b"), b.Peer)
	if err != nil {
		t.Fatal(err)
	}
	if stA.Sent != 0 || stB.Accepted != 0 {
		t.Fatalf("a missing state file loads as %+v and %+v, want zero", stA, stB)
	}
	stA.Sent = Stamp(now, stA.Sent)
	if err := stA.Save(); err != nil {
		t.Fatal(err)
	}
	in, _ := Initiate(a, stA.Sent)
	_, _, stamp, err := Respond(now, b, in.Msg, stB.Accepted, ChannelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stB.Accepted = stamp
	if err := stB.Save(); err != nil {
		t.Fatal(err)
	}
	// B restarts: the same MsgInit again (a replay) and an older one.
	stB, err = LoadState(filepath.Join(dir, "b"), b.Peer)
	if err != nil || stB.Accepted != stamp {
		t.Fatalf("reloaded state %+v (%v), want accepted %d", stB, err, stamp)
	}
	if _, resp, _, err := Respond(now, b, in.Msg, stB.Accepted, ChannelConfig{}); !errors.Is(err, ErrStale) || resp != nil {
		t.Fatalf("replayed MsgInit after the responder's restart: %v (answer of %d bytes), want ErrStale and no answer", err, len(resp))
	}
	old, _ := Initiate(a, stamp-1)
	if _, _, _, err := Respond(now, b, old.Msg, stB.Accepted, ChannelConfig{}); !errors.Is(err, ErrStale) {
		t.Fatalf("older MsgInit: %v, want ErrStale", err)
	}
	// A restarts with its clock an hour behind: its next stamp is still
	// above the last it sent, and B takes it.
	stA, err = LoadState(filepath.Join(dir, "a"), a.Peer)
	if err != nil {
		t.Fatal(err)
	}
	next := Stamp(now.Add(-time.Hour), stA.Sent)
	if next != stamp+1 {
		t.Fatalf("stamp after the clock went back: %d, want %d", next, stamp+1)
	}
	in2, _ := Initiate(a, next)
	cb, resp, _, err := Respond(now, b, in2.Msg, stB.Accepted, ChannelConfig{})
	if err != nil {
		t.Fatalf("fresh MsgInit after the replay: %v", err)
	}
	ca, err := in2.Complete(now, resp, ChannelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, p, err := cb.Open(now, ca.Seal(now, FlagData, 0, 1, []byte("x"))); err != nil || string(p) != "x" {
		t.Fatalf("after the new handshake: %q %v", p, err)
	}
	// A state file of another peer does not vouch for this one's stamps.
	_, c := pairKeys(t)
	if st, err := LoadState(filepath.Join(dir, "b"), c.Peer); err != nil || st.Accepted != 0 {
		t.Fatalf("state of another peer: %+v %v, want accepted 0", st, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad"), []byte("isthmus datagram state 1\npeer zz\naccepted 1\nsent 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(filepath.Join(dir, "bad"), c.Peer); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt state file: %v, want an error naming line 2", err)
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
