package link

import (
	"errors"
	"fmt"
	"strings"
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

// A sender fills its share with small presences, one per recipient (each
// its own Coalesce key and Pair), then replaces each in place with a big
// one: replacing a presence in place is held to MaxSenderBytes too.
func TestSenderShareCoalescedPresence(t *testing.T) {
	cfg := SessionConfig{MaxQueueBytes: 40000, MaxSenderBytes: 1000}
	a, err := NewSession(cfg, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	pres := func(to string, pad int) Item {
		d := fmt.Appendf(nil, "<presence from='eve@a.test/r' to='%s'><status>%s</status></presence>", to, strings.Repeat("x", pad))
		return Item{Data: d, Class: ClassPresence, Pair: "eve@a.test|" + to, Coalesce: "eve@a.test/r|" + to}
	}
	var id uint64
	var tos []string
	for i := 0; ; i++ {
		to := fmt.Sprintf("u%d@b.test", i)
		id++
		if err := a.Enqueue(t0, id, pres(to, 0)); errors.Is(err, ErrSenderFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		tos = append(tos, to)
	}
	for _, to := range tos {
		id++
		if err := a.Enqueue(t0, id, pres(to, 900)); err != nil && !errors.Is(err, ErrSenderFull) {
			t.Fatal(err)
		}
	}
	if got := a.bySender["eve@a.test"]; got > cfg.MaxSenderBytes {
		t.Errorf("eve holds %d B, over her share of %d B", got, cfg.MaxSenderBytes)
	}
}

// Two presences of one pair queued (two resources): a newer presence of
// the first resource that is refused by the sender check leaves the older
// one queued (before, the older one was removed first and both were lost).
func TestSenderShareRefusalKeepsQueuedPresence(t *testing.T) {
	cfg := SessionConfig{MaxQueueBytes: 40000, MaxSenderBytes: 1000}
	a, _ := NewSession(cfg, counterIDs(100))
	pres := func(res string, pad int) Item {
		d := fmt.Appendf(nil, "<presence from='eve@a.test/%s' to='bob@b.test'><status>%s</status></presence>", res, strings.Repeat("x", pad))
		return Item{Data: d, Class: ClassPresence, Pair: "eve@a.test|bob@b.test", Coalesce: "eve@a.test/" + res + "|bob@b.test"}
	}
	if err := a.Enqueue(t0, 1, pres("a", 0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Enqueue(t0, 2, pres("b", 700)); err != nil {
		t.Fatal(err)
	}
	err := a.Enqueue(t0, 3, pres("a", 300))
	w, _ := a.Queued()
	if errors.Is(err, ErrSenderFull) && w == 1 {
		t.Errorf("resource a: old presence dropped and new one refused (%v); %d queued", err, w)
	}
}
