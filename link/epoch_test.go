package link

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// frameTypes lists the types of the frames in buf.
func frameTypes(buf []byte) []byte {
	var ts []byte
	br := bufio.NewReader(bytes.NewReader(buf))
	for {
		f, err := ReadFrame(br)
		if err != nil {
			return ts
		}
		ts = append(ts, f.Type)
	}
}

// TestRestartReadsHelloFirst: a side restarted from its spool with an
// unacknowledged frame must start a new epoch (its encoder is gone). When it
// reads the peer's HELLO before writing its own, its HELLO already names the
// new epoch, so it must not follow it with an EPOCH frame naming the same
// epoch (the peer would drop the connection: bad EPOCH).
func TestRestartReadsHelloFirst(t *testing.T) {
	for _, peerGot := range []bool{false, true} {
		name := "frame lost"
		if peerGot {
			name = "frame received"
		}
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t)
			a.Connected(t0)
			b.Connected(t0)
			exchange(t, t0, a, b)
			now := t0.Add(time.Second)
			old := Item{Data: stanza(1)}
			a.Enqueue(now, 1, old)
			now = now.Add(time.Second)
			f := a.Poll(now) // DATA 1, never acknowledged
			if f == nil {
				t.Fatal("no DATA frame")
			}
			var got []string
			if peerGot {
				got = deliver(t, now, b, f)
			}
			a.Disconnected()
			b.Disconnected()

			// a is killed and restarts from its spool.
			a2, err := NewSession(SessionConfig{}, counterIDs(500))
			if err != nil {
				t.Fatal(err)
			}
			a2.Restore(Restored{Epoch: a.Epoch(), Acked: 0, Frames: [][]uint64{{1}},
				Items: []Stored{{ID: 1, Item: old}}, PeerEpoch: b.Epoch()}, now)
			a2.Connected(now)
			b.Connected(now)
			// The peer's HELLO is read before a2 writes anything.
			deliver(t, now, a2, b.Poll(now))
			if a2.EpochChanges != 1 || a2.Epoch() == a.Epoch() {
				t.Fatalf("epoch %d→%d, %d changes: want a new epoch", a.Epoch(), a2.Epoch(), a2.EpochChanges)
			}
			out := a2.Poll(now)
			if ts := frameTypes(out); len(ts) == 0 || ts[0] != FrameHello || bytes.IndexByte(ts, FrameEpoch) >= 0 {
				t.Fatalf("a2 wrote frames %x: want HELLO naming the new epoch and no EPOCH", ts)
			}
			// b accepts all of it: no reconnect.
			br := bufio.NewReader(bytes.NewReader(out))
			for {
				fr, err := ReadFrame(br)
				if err != nil {
					break
				}
				batch, err := b.Receive(now, fr)
				if err != nil {
					t.Fatalf("peer refused a2's frame %#x: %v", fr.Type, err)
				}
				for _, st := range batch {
					got = append(got, string(st))
				}
			}
			more, _ := exchange(t, now.Add(time.Second), a2, b)
			got = append(got, more...)
			// b's HELLO acknowledges the frame it received: exactly once
			// either way.
			want := 1
			if len(got) != want || got[len(got)-1] != string(stanza(1)) {
				t.Fatalf("b got %q, want the stanza %d time(s)", got, want)
			}
		})
	}
}

// TestEpochAnnouncedAfterReconnect: a side that started a new epoch after
// its HELLO but lost the connection before sending the EPOCH frame names the
// epoch in its next HELLO, and sends no EPOCH frame for it.
func TestEpochAnnouncedAfterReconnect(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	now := t0.Add(time.Second)
	a.Enqueue(now, 1, Item{Data: stanza(1)})
	a.Poll(now.Add(time.Second)) // DATA 1, lost
	a.Disconnected()
	b.Disconnected()
	// b restarts with no state: a must start a new epoch.
	_, b2 := newPair(t)
	b2.newID = counterIDs(300)
	a.Connected(now)
	b2.Connected(now)
	hb := b2.Poll(now)       // b2's HELLO, naming no epoch of a's
	a.Poll(now)              // a's HELLO, naming the old epoch (lost)
	deliver(t, now, a, hb)   // a starts a new epoch: EPOCH owed
	if a.EpochChanges != 1 { // ...and the connection drops before it is sent
		t.Fatalf("%d epoch changes, want 1", a.EpochChanges)
	}
	a.Disconnected()
	b2.Disconnected()
	a.Connected(now)
	b2.Connected(now)
	hello := a.Poll(now)
	deliver(t, now, b2, hello)
	deliver(t, now, a, b2.Poll(now))
	rest := a.Poll(now)
	if ts := frameTypes(append(hello, rest...)); bytes.IndexByte(ts, FrameEpoch) >= 0 {
		t.Fatalf("a wrote frames %x after its HELLO named the new epoch", ts)
	}
	got := deliver(t, now, b2, rest)
	more, _ := exchange(t, now.Add(time.Second), a, b2)
	got = append(got, more...)
	if len(got) != 1 || got[0] != string(stanza(1)) {
		t.Fatalf("b2 got %q", got)
	}
}

// TestEpochFlood: a peer with the right key that sends 2,000 EPOCH frames
// gets one accepted per connection (right after the HELLOs, as the protocol
// has it); the next is refused and counted, the connection is dropped, and
// nothing of the flood reaches the decoder or the spool. The real peer's
// later reconnects resume without a protocol error, whichever HELLO is read
// first, and deliver what was queued exactly once.
func TestEpochFlood(t *testing.T) {
	for _, peerReadsFirst := range []bool{false, true} {
		name := "peer writes HELLO first"
		if peerReadsFirst {
			name = "peer reads HELLO first"
		}
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t)
			a.Connected(t0)
			b.Connected(t0)
			exchange(t, t0, a, b)
			now := t0.Add(time.Second)
			b.Enqueue(now, 1, Item{Data: stanza(1)})
			a.Enqueue(now, 1, Item{Data: stanza(2)})
			toB, toA := exchange(t, now.Add(time.Second), a, b)
			exchange(t, now.Add(3*time.Second), a, b) // acks
			if len(toB) != 1 || len(toA) != 1 {
				t.Fatalf("before the flood: %q, %q", toB, toA)
			}
			a.Disconnected()
			b.Disconnected()
			a.TakeOps()

			// The impostor: right key, its own epochs.
			now = now.Add(10 * time.Second)
			var flood []byte
			flood = AppendFrame(flood, FrameHello, Hello{Version, 0, 7000, a.Epoch(), 0, compress.Version, compress.MaxBatchBytes, compress.DictHash{}, nil}.append(nil))
			for i := range 2000 {
				flood = AppendFrame(flood, FrameEpoch, binary.AppendUvarint(nil, uint64(7001+i)))
			}
			accepted, refused := 0, 0
			for conn := 0; conn < 3 && len(flood) > 0; conn++ {
				a.Connected(now)
				a.Poll(now) // a's HELLO
				br := bufio.NewReader(bytes.NewReader(flood))
				if conn > 0 { // a new HELLO first, then the rest
					hello := AppendFrame(nil, FrameHello, Hello{Version, 0, 7000, a.Epoch(), 0, compress.Version, compress.MaxBatchBytes, compress.DictHash{}, nil}.append(nil))
					br = bufio.NewReader(io.MultiReader(bytes.NewReader(hello), br))
				}
				for {
					f, err := ReadFrame(br)
					if err != nil {
						break
					}
					if _, err := a.Receive(now, f); err != nil {
						if !errors.Is(err, ErrProtocol) {
							t.Fatalf("refused with %v, want a protocol error", err)
						}
						refused++
						break // the connection is dropped
					}
					if f.Type == FrameEpoch {
						accepted++
					}
				}
				rest, _ := io.ReadAll(br)
				flood = rest
				a.Disconnected()
			}
			if accepted != 3 || refused != 3 || a.ProtocolErrors != 3 {
				t.Fatalf("of the flood, %d EPOCH frames accepted, %d refused, ProtocolErrors %d: want 1 of each per connection",
					accepted, refused, a.ProtocolErrors)
			}
			recs := 0
			for _, o := range a.TakeOps() {
				if o.Kind == OpRecv {
					recs++
				}
			}
			if recs > 6 {
				t.Fatalf("the flood wrote %d receive records to the spool, want at most 2 per connection", recs)
			}

			// The real peer comes back, with something queued each way.
			now = now.Add(time.Second)
			b.Enqueue(now, 2, Item{Data: stanza(3)})
			a.Enqueue(now, 2, Item{Data: stanza(4)})
			a.Connected(now)
			b.Connected(now)
			ha := a.Poll(now)
			if peerReadsFirst {
				deliver(t, now, b, ha)
				deliver(t, now, a, b.Poll(now))
			} else {
				hb := b.Poll(now)
				deliver(t, now, a, hb)
				deliver(t, now, b, ha)
			}
			toB, toA = exchange(t, now.Add(2*time.Second), a, b)
			if len(toB) != 1 || toB[0] != string(stanza(4)) || len(toA) != 1 || toA[0] != string(stanza(3)) {
				t.Fatalf("after the flood: a→b %q, b→a %q: want one stanza each way", toB, toA)
			}
			if a.ProtocolErrors != 3 || b.ProtocolErrors != 0 {
				t.Fatalf("protocol errors after the flood: a %d, b %d", a.ProtocolErrors, b.ProtocolErrors)
			}
		})
	}
}

// TestEpochPlacement: EPOCH is accepted only as the first frame after the
// peer's HELLO, once our HELLO went out; a repeat of the epoch the HELLO
// named (sent by peers before the fix of Poll) is accepted and changes
// nothing.
func TestEpochPlacement(t *testing.T) {
	hello := Frame{FrameHello, Hello{Version, 0, 5, 0, 0, compress.Version, compress.MaxBatchBytes, compress.DictHash{}, nil}.append(nil)}
	epoch := func(e uint64) Frame { return Frame{FrameEpoch, binary.AppendUvarint(nil, e)} }
	cases := []struct {
		name   string
		polled bool // our HELLO went out before the peer's frames
		frames []Frame
		ok     bool
	}{
		{"after the HELLOs", true, []Frame{hello, epoch(6)}, true},
		{"same as HELLO's", true, []Frame{hello, epoch(5)}, true},
		{"before our HELLO", false, []Frame{hello, epoch(6)}, false},
		{"after ACKREQ", true, []Frame{hello, {FrameAckReq, nil}, epoch(6)}, false},
		{"second", true, []Frame{hello, epoch(6), epoch(7)}, false},
		{"zero", true, []Frame{hello, epoch(0)}, false},
	}
	for _, c := range cases {
		a, _ := newPair(t)
		a.Connected(t0)
		if c.polled {
			a.Poll(t0)
		}
		var err error
		for _, f := range c.frames {
			if _, err = a.Receive(t0, f); err != nil {
				break
			}
		}
		if (err == nil) != c.ok || a.ProtocolErrors != map[bool]uint64{true: 0, false: 1}[c.ok] {
			t.Errorf("%s: err %v, ProtocolErrors %d", c.name, err, a.ProtocolErrors)
		}
	}
}
