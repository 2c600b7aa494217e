package link

import (
	"testing"
	"time"
)

// TestEchoAfterSpoolRestart: a restarts from its spool with an unacked
// frame (so its encoder, and its log of sent ids, are lost) and redials; b
// reads a's HELLO, which still names a's old epoch, before a's EPOCH. The
// HELLO's flag HelloEncoderLost must keep b from echoing ids of a's old
// epoch (before it, a refused b's first DATA and the connection failed
// once more).
func TestEchoAfterSpoolRestart(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	// One more message, whose frame is lost: a holds it unacked.
	last := Item{Data: echoMsg(99)}
	a.Enqueue(now, 5, last)
	if f := a.Poll(now.Add(time.Second)); f == nil {
		t.Fatal("a sent nothing")
	}
	a.Disconnected()
	b.Disconnected()
	// b has receipts to send for the 4 messages it got.
	for i := range 4 {
		b.Enqueue(now, uint64(i)+1, Item{Data: echoReceipt(i, echoID(i))})
	}
	now = now.Add(2 * time.Second)
	// a is killed and restarts from its spool (its acked count is 1 frame).
	a2, err := NewSession(SessionConfig{}, counterIDs(500))
	if err != nil {
		t.Fatal(err)
	}
	a2.Restore(Restored{Epoch: a.Epoch(), Acked: 1, Frames: [][]uint64{{5}},
		Items: []Stored{{ID: 5, Item: last}}, PeerEpoch: b.Epoch(), H: 0}, now)
	a2.Connected(now)
	b.Connected(now)
	// a2 dials: its HELLO goes first; b answers with HELLO and DATA at once.
	if _, err := feed(now, b, a2.Poll(now)); err != nil {
		t.Fatalf("b: %v", err)
	}
	got, err := feed(now, a2, b.Poll(now))
	t.Logf("a2 got %d receipts, err %v; a2 epoch changes %d, protocol errors %d", len(got), err, a2.EpochChanges, a2.ProtocolErrors)
	if err != nil {
		t.Errorf("a2 refused b's first DATA after a2's restart: %v", err)
		a2.Disconnected()
		b.Disconnected()
		now = now.Add(5 * time.Second)
		a2.Connected(now)
		b.Connected(now)
		_, more := exchange(t, now, a2, b)
		t.Logf("after a second connection: %d receipts; b epoch changes %d", len(more), b.EpochChanges)
	}
}
