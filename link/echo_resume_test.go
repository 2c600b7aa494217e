package link

import (
	"fmt"
	"testing"
	"time"
)

// TestEchoResumeAfterAckTrim: b's receipt (echoing a's first message
// id) is written but lost, while the b→a path is dead and a→b works: b keeps
// reading a's backlog (5000 messages) and its acks are lost too. On the
// reconnection b's HELLO acknowledges the whole backlog, and a's sent log
// lets go of everything before that ack's window. b must not resume its
// receipt frame byte for byte (it names an entry a no longer holds): it
// encodes it again in a new epoch (Session.echoesReachable).
func TestEchoResumeAfterAckTrim(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	b.Enqueue(now, 1, Item{Data: echoReceipt(0, echoID(0))})
	now = now.Add(time.Second)
	if f := b.Poll(now); f == nil { // the receipt: lost (b→a dead)
		t.Fatal("b sent nothing")
	}
	const n = 5000
	enqueueBacklog(a, now, n)
	got := 0
	for k := 0; k < 20000; k++ {
		now = now.Add(100 * time.Millisecond)
		g, err := feed(now, b, a.Poll(now)) // a→b works
		if err != nil {
			t.Fatal(err)
		}
		got += len(g)
		b.Poll(now) // b's acks are lost
	}
	t.Logf("b read %d of a's backlog while b→a was dead", got)
	a.Disconnected()
	b.Disconnected()
	c := runConnection(now.Add(time.Minute), a, b)
	now, errA, errB, gotA := c.end, c.errA, c.errB, c.toA
	t.Logf("a got %d receipts; a err %v; b err %v; epoch changes a %d b %d", gotA, errA, errB, a.EpochChanges, b.EpochChanges)
	if errA != nil {
		a.Disconnected()
		b.Disconnected()
		now = now.Add(5 * time.Second)
		a.Connected(now)
		b.Connected(now)
		_, more := exchange(t, now, a, b)
		t.Logf("second connection: a got %d receipts (%q); epoch changes a %d b %d", len(more), more, a.EpochChanges, b.EpochChanges)
	}
	if errA != nil || errB != nil || gotA != 1 {
		t.Fatalf("the reconnection failed: a %v, b %v (a got %d receipts)", errA, errB, gotA)
	}
}

// TestEchoResentFreshAck: both directions stall (as TestEchoStall),
// so b's HELLO acknowledges little; but b has 60 unacked frames, its
// receipt last. While b resends them one by one it reads a's resent
// backlog; its resent frames must carry its HELLO's ack, not the fresh one,
// or a lets go of the entry the receipt names before the receipt arrives.
func TestEchoResentFreshAck(t *testing.T) {
	a, b := newPair(t)
	now := echoStart(t, a, b)
	for i := range 60 {
		now = now.Add(time.Second)
		st := fmt.Appendf(nil, "<message to='v@a.test/r' from='u@b.test/r' id='%s' type='chat'><body>x</body></message>", echoID(20000+i))
		if i == 59 {
			st = echoReceipt(0, echoID(0))
		}
		b.Enqueue(now, uint64(i)+1, Item{Data: st})
		if f := b.Poll(now.Add(time.Second)); f == nil {
			t.Fatal("b sent nothing")
		}
	}
	const n = 5000
	enqueueBacklog(a, now, n)
	for k := 0; k < 20000; k++ {
		now = now.Add(100 * time.Millisecond)
		a.Poll(now)
	}
	a.Disconnected()
	b.Disconnected()
	c := runConnection(now.Add(time.Minute), a, b)
	errA, errB, gotA := c.errA, c.errB, c.toA
	t.Logf("a got %d of b's 60; a err %v; b err %v; epoch changes a %d b %d", gotA, errA, errB, a.EpochChanges, b.EpochChanges)
	if errA != nil || errB != nil || gotA != 60 {
		t.Fatalf("the reconnection failed: a %v, b %v", errA, errB)
	}
}
