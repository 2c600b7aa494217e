package link

import (
	"testing"
	"time"
)

// TestEchoStall: b's receipt echoing a's message id is in flight when the
// path stalls; a keeps sending, more than echoLogSize ids, into the dead
// connection. After the reconnect both resume byte for byte, and a must
// still resolve b's receipt: its log keeps what b has not acknowledged
// (IDLog.RetainUnacked). Before, a refused the receipt, b re-encoded it
// echoing the same id, and that repeated on every reconnection until b had
// received about a thousand more of a's ids.
func TestEchoStall(t *testing.T) { testEchoStall(t, 0, 4) }

// Frames of one stanza (a trickle rather than a backlog).
func TestEchoStallSmallFrames(t *testing.T) { testEchoStall(t, 200, 3000) }

func testEchoStall(t *testing.T, maxBatch, conns int) {
	a, err := NewSession(SessionConfig{MaxBatchBytes: maxBatch}, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSession(SessionConfig{}, counterIDs(200))
	now := echoStart(t, a, b)
	b.Enqueue(now, 1, Item{Data: echoReceipt(0, echoID(0))})
	now = now.Add(time.Second)
	if f := b.Poll(now); f == nil { // the receipt: lost in the stall
		t.Fatal("b sent nothing")
	}
	// a sends 5000 more messages into the stalled path (e.g. a MUC backlog).
	const n = 5000
	enqueueBacklog(a, now, n)
	for k := 0; k < 20000; k++ {
		now = now.Add(100 * time.Millisecond)
		a.Poll(now)
	}
	if w, u := a.Queued(); w != 0 || u < n {
		t.Fatalf("a: %d waiting, %d unacked", w, u)
	}
	a.Disconnected()
	b.Disconnected()
	now = now.Add(time.Minute)
	conn := 1
	for ; conn <= conns; conn++ {
		c := runConnection(now, a, b)
		now = c.end
		errA, errB, gotA, gotB := c.errA, c.errB, c.toA, c.toB
		if conn <= 3 || errA == nil && errB == nil {
			t.Logf("connection %d: b got %d, a got %d receipts; a err %v; b err %v; epoch changes a %d b %d",
				conn, gotB, gotA, errA, errB, a.EpochChanges, b.EpochChanges)
		}
		a.Disconnected()
		b.Disconnected()
		if errA == nil && errB == nil {
			break
		}
		now = now.Add(5 * time.Second)
	}
	if a.ProtocolErrors+b.ProtocolErrors != 0 {
		t.Errorf("protocol errors a %d, b %d", a.ProtocolErrors, b.ProtocolErrors)
	}
}
