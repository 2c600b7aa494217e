package link

import (
	"testing"
	"time"
)

// The smoothed RTT is sampled from DATA to its ack, and the oldest-queued
// time and held bytes follow the queue.
func TestRTTOldestHeldBytes(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b) // HELLOs
	if a.RTT() != 0 || !a.Oldest().IsZero() || a.HeldBytes() != 0 {
		t.Fatalf("fresh session: SRTT %v, Oldest %v, held %d", a.RTT(), a.Oldest(), a.HeldBytes())
	}
	a.Enqueue(t0, 1, Item{Data: stanza(1)})
	if !a.Oldest().Equal(t0) || a.HeldBytes() != len(stanza(1)) {
		t.Fatalf("after Enqueue: Oldest %v, held %d", a.Oldest(), a.HeldBytes())
	}
	sent := t0.Add(50 * time.Millisecond)
	deliver(t, sent, b, a.Poll(sent)) // the DATA frame
	if !a.Oldest().Equal(t0) {
		t.Fatalf("in flight: Oldest %v, want the enqueue time", a.Oldest())
	}
	acked := sent.Add(1300 * time.Millisecond) // after b's AckDelay of 1s
	deliver(t, acked, a, b.Poll(acked))
	if a.RTT() != 1300*time.Millisecond {
		t.Fatalf("SRTT = %v, want 1.3s", a.RTT())
	}
	if !a.Oldest().IsZero() || a.HeldBytes() != 0 {
		t.Fatalf("after the ack: Oldest %v, held %d", a.Oldest(), a.HeldBytes())
	}
	// A second sample moves the average by an eighth of the difference.
	a.Enqueue(acked, 2, Item{Data: stanza(2)})
	sent = acked.Add(50 * time.Millisecond)
	deliver(t, sent, b, a.Poll(sent))
	acked = sent.Add(500 * time.Millisecond)
	b.Enqueue(acked, 3, Item{Data: stanza(3)}) // data from b carries the ack at once
	deliver(t, acked.Add(50*time.Millisecond), a, b.Poll(acked.Add(50*time.Millisecond)))
	if want := 1300*time.Millisecond + (550*time.Millisecond-1300*time.Millisecond)/8; a.RTT() != want {
		t.Fatalf("SRTT = %v, want %v", a.RTT(), want)
	}
}
