package link

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// One sender's flood while the link is down takes at most MaxSenderBytes of
// the queue: its next message is refused with ErrSenderFull while another
// sender's still goes in; once the peer acknowledges, the sender has room
// again, and the per-sender accounting ends at zero.
func TestSenderShare(t *testing.T) {
	cfg := SessionConfig{MaxQueueBytes: 4000, MaxSenderBytes: 1000}
	a, err := NewSession(cfg, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cfg, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	msg := func(from string, i int) Item {
		data := fmt.Appendf(nil, "<message to='bob@b.test' from='%s/r' id='m%03d'><body>%080d</body></message>", from, i, i)
		return Item{Data: data, Class: ClassMessage, Pair: from + "|bob@b.test"}
	}
	n := len(msg("eve@a.test", 0).Data)
	var id uint64
	enqueue := func(it Item) error { id++; return a.Enqueue(t0, id, it) }

	accepted := 0
	for i := 0; ; i++ {
		err := enqueue(msg("eve@a.test", i))
		if errors.Is(err, ErrSenderFull) {
			break
		}
		if err != nil {
			t.Fatalf("message %d of eve: %v", i, err)
		}
		accepted++
	}
	if want := cfg.MaxSenderBytes / n; accepted != want {
		t.Errorf("eve's flood: %d accepted, want %d (%d B each, share %d B)", accepted, want, n, cfg.MaxSenderBytes)
	}
	if a.Drops.SenderFull != 1 {
		t.Errorf("Drops.SenderFull = %d, want 1", a.Drops.SenderFull)
	}
	if err := enqueue(msg("ann@a.test", 0)); err != nil {
		t.Errorf("ann's message refused while eve holds her share: %v", err)
	}
	// A stanza without a Pair (the presence mirror's own) is not limited
	// by anyone's share.
	mirror := msg("eve@a.test", 999)
	mirror.Pair = ""
	if err := enqueue(mirror); err != nil {
		t.Errorf("a pair-less item refused: %v", err)
	}

	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b) // HELLOs
	toB, _ := exchange(t, t0.Add(time.Second), a, b)
	if want := accepted + 2; len(toB) != want {
		t.Fatalf("%d stanzas delivered, want %d", len(toB), want)
	}
	later := t0.Add(time.Minute) // past every ack delay
	exchange(t, later, a, b)
	if a.HeldBytes() != 0 || len(a.bySender) != 0 {
		t.Fatalf("after the acks: %d B held, by sender %v; want none", a.HeldBytes(), a.bySender)
	}
	if err := enqueue(msg("eve@a.test", 500)); err != nil {
		t.Errorf("eve refused after her stanzas were acknowledged: %v", err)
	}
}
