package link

import (
	"bufio"
	"bytes"
	"testing"
	"time"
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
				Items: []Stored{{1, old}}, PeerEpoch: b.Epoch()}, now)
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
