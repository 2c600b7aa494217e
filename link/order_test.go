package link

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Priorities must not break per-pair order (RFC 6120 §10.1): stanzas between
// the same two entities arrive in the order they were handed to the link,
// whatever their class.

const pairBA = "bob@a.test|alice@b.test"

func pres(tag string) Item {
	return Item{Data: fmt.Appendf(nil, "<presence n='%s'/>", tag), Class: ClassPresence, Coalesce: "bob@a.test/r|alice@b.test", Pair: pairBA}
}

func hiItem(tag string) Item {
	return Item{Data: fmt.Appendf(nil, "<presence type='subscribed' n='%s'/>", tag), Class: ClassMessage, Pair: pairBA}
}

// other is an item of another pair: carol's presence, or erin's message.
func other(tag string, cls Class) Item {
	it := Item{Data: fmt.Appendf(nil, "<x n='%s'/>", tag), Class: cls, Pair: "erin@a.test|frank@b.test"}
	if cls == ClassPresence {
		it.Pair, it.Coalesce = "carol@a.test|dave@b.test", "carol@a.test/r|dave@b.test"
	}
	return it
}

// tags returns the n='…' attribute of each stanza.
func tags(got []string) []string {
	var out []string
	for _, g := range got {
		i := strings.Index(g, "n='")
		out = append(out, g[i+3:i+3+strings.IndexByte(g[i+3:], '\'')])
	}
	return out
}

func connectedPair(t *testing.T, cfg SessionConfig) (*Session, *Session) {
	t.Helper()
	a, err := NewSession(cfg, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cfg, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	return a, b
}

var testItemID uint64

func enqueueAll(t *testing.T, s *Session, now time.Time, items ...Item) {
	t.Helper()
	for _, it := range items {
		testItemID++
		if err := s.Enqueue(now, testItemID, it); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHigherClassDoesNotOvertakeSamePair is the Prosody interop case: bob's
// unavailable presence (low class) queued, then a subscription presence
// (high class) between the same bare JIDs. The presence goes first; other
// pairs keep their priorities.
func TestHigherClassDoesNotOvertakeSamePair(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	enqueueAll(t, a, t0, other("o1", ClassPresence), pres("unavail"), hiItem("subscribed"), other("o2", ClassMessage))
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	want := []string{"unavail", "subscribed", "o2", "o1"}
	if g := tags(got); !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestGroupTakesFanoutAhead: a message carries Group "bare from|domain of
// to", the Pair of the presence mirror's fan-out stanzas; the sender's
// queued fan-out presence goes ahead of it, presence of other senders (and
// of the same sender to another domain) keeps its lower priority.
func TestGroupTakesFanoutAhead(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	fan := func(tag, pair string) Item {
		return Item{Data: fmt.Appendf(nil, "<presence n='%s'/>", tag), Class: ClassPresence, Pair: pair}
	}
	msg := Item{Data: []byte("<message n='m'/>"), Class: ClassMessage, Pair: "bob@a.test|alice@b.test", Group: "bob@a.test|b.test"}
	enqueueAll(t, a, t0, fan("carol", "carol@a.test|b.test"), fan("bob-c", "bob@a.test|c.test"), fan("bob", "bob@a.test|b.test"), msg)
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	if g, want := tags(got), []string{"bob", "m", "carol", "bob-c"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestNoCoalescingAcrossHigherClass: a presence queued before a high-class
// item of its pair is not replaced by one queued after it.
func TestNoCoalescingAcrossHigherClass(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	enqueueAll(t, a, t0, pres("p1"), hiItem("s"), pres("p2"))
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	if g, want := tags(got), []string{"p1", "s", "p2"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
	if a.Drops.Coalesced != 0 {
		t.Fatalf("coalesced %d across a higher-class item", a.Drops.Coalesced)
	}
}

// TestCoalescingStillCounts: presence for the same key still replaces a
// queued one, also across high-class items of other pairs, and is counted.
func TestCoalescingStillCounts(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	enqueueAll(t, a, t0, pres("p1"), other("m1", ClassMessage), pres("p2"), pres("p3"), other("q1", ClassPresence), other("q2", ClassPresence))
	if a.Drops.Coalesced != 3 {
		t.Fatalf("coalesced %d, want 3", a.Drops.Coalesced)
	}
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	if g, want := tags(got), []string{"m1", "p3", "q2"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
	// After a high-class item of the pair, coalescing starts afresh behind it.
	enqueueAll(t, a, t0.Add(time.Second), pres("p4"), hiItem("s"), pres("p5"), pres("p6"))
	if a.Drops.Coalesced != 4 {
		t.Fatalf("coalesced %d, want 4", a.Drops.Coalesced)
	}
	got, _ = exchange(t, t0.Add(2*time.Second), a, b)
	if g, want := tags(got), []string{"p4", "s", "p6"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
	if high, low := a.WaitingByPriority(); high+low != 0 {
		t.Fatalf("%d+%d still waiting", high, low)
	}
}

// TestBatchFillKeepsPairOrder: when the high queue does not fit in one
// frame, a small presence of the same pair queued after it must not ride
// in the first frame.
func TestBatchFillKeepsPairOrder(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{MaxBatchBytes: 1000})
	big := func(tag string) Item {
		it := hiItem(tag)
		it.Data = fmt.Appendf(nil, "<message n='%s'><body>%s</body></message>", tag, strings.Repeat("x", 600))
		return it
	}
	enqueueAll(t, a, t0, big("h1"), big("h2"), pres("p"))
	var got []string
	for i := range 5 {
		g, _ := exchange(t, t0.Add(time.Duration(i+1)*time.Second), a, b)
		got = append(got, g...)
	}
	if g, want := tags(got), []string{"h1", "h2", "p"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestNewEpochKeepsPairOrder: stanzas re-encoded in a new epoch (the peer
// lost our stream) keep the order they were first sent in, ahead of
// anything queued after them, whatever their class.
func TestNewEpochKeepsPairOrder(t *testing.T) {
	a, _ := connectedPair(t, SessionConfig{})
	enqueueAll(t, a, t0, hiItem("s1"), pres("p1"))
	if f := a.Poll(t0.Add(time.Second)); f == nil { // one frame: s1, p1; lost
		t.Fatal("no frame")
	}
	enqueueAll(t, a, t0.Add(time.Second), hiItem("s2"))
	a.Disconnected()
	b2, err := NewSession(SessionConfig{}, counterIDs(300)) // the peer restarted without state
	if err != nil {
		t.Fatal(err)
	}
	a.Connected(t0.Add(2 * time.Second))
	b2.Connected(t0.Add(2 * time.Second))
	got, _ := exchange(t, t0.Add(3*time.Second), a, b2)
	if a.EpochChanges != 1 {
		t.Fatalf("epoch changes %d, want 1", a.EpochChanges)
	}
	if g, want := tags(got), []string{"s1", "p1", "s2"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestRestoreKeepsPairOrder: a restarted session rebuilds its queues from
// the spool in acceptance order with the same promotion rule.
func TestRestoreKeepsPairOrder(t *testing.T) {
	_, b := connectedPair(t, SessionConfig{})
	items := []Item{other("o1", ClassPresence), pres("p1"), hiItem("s1"), pres("p2"), other("m1", ClassMessage)}
	var r Restored
	for i, it := range items {
		r.Items = append(r.Items, Stored{ID: uint64(i + 1), Item: it})
	}
	a2, err := NewSession(SessionConfig{}, counterIDs(400))
	if err != nil {
		t.Fatal(err)
	}
	a2.Restore(r, t0)
	a2.Connected(t0)
	b.Disconnected()
	b.Connected(t0)
	got, _ := exchange(t, t0.Add(time.Second), a2, b)
	if g, want := tags(got), []string{"p1", "s1", "m1", "o1", "p2"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestCoalescingKeepsSubsequence: a newer presence of one resource does not
// take its older one's place when another presence of the pair is queued
// behind that one (bob/phone available, bob unavailable, bob/phone
// available again must not arrive as available, unavailable).
func TestCoalescingKeepsSubsequence(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	phone := func(tag string) Item {
		it := pres(tag)
		it.Coalesce = "bob@a.test/phone|alice@b.test"
		return it
	}
	bare := pres("u")
	bare.Coalesce = "bob@a.test|alice@b.test"
	enqueueAll(t, a, t0, phone("p1"), bare, phone("p2"), other("o", ClassPresence), phone("p3"))
	if a.Drops.Coalesced != 2 {
		t.Fatalf("coalesced %d, want 2", a.Drops.Coalesced)
	}
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	if g, want := tags(got), []string{"u", "o", "p3"}; !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// TestRandomPairOrder drives a session with random classes, pairs, keys,
// batch sizes, lost frames and reconnects, and checks that what each pair's
// receiver got is a subsequence of what was handed over, with every
// high-class stanza and the last presence of every key among it, once.
func TestRandomPairOrder(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		a, b := connectedPair(t, SessionConfig{MaxBatchBytes: 200 + rng.IntN(400)})
		pairs := []string{"p|q", "p|r", "s|q"}
		type sent struct {
			pair, key string
			hi        bool
		}
		byTag := map[string]sent{}
		handed := map[string][]string{} // pair -> tags in order
		lastKey := map[string]string{}  // coalesce key -> last tag
		var got []string
		now := t0
		lost := false
		for i := range 400 {
			switch r := rng.IntN(10); {
			case r < 7:
				tag := fmt.Sprint(i)
				pair := pairs[rng.IntN(len(pairs))]
				it := Item{Data: fmt.Appendf(nil, "<x n='%s'/>", tag), Pair: pair}
				sn := sent{pair: pair}
				if rng.IntN(2) == 0 {
					it.Class = ClassPresence
					it.Coalesce = fmt.Sprintf("%s/%d", pair, rng.IntN(2))
					sn.key = it.Coalesce
					lastKey[it.Coalesce] = tag
				} else {
					it.Class, sn.hi = Class(rng.IntN(2)), true
				}
				byTag[tag] = sn
				handed[pair] = append(handed[pair], tag)
				enqueueAll(t, a, now, it)
			case r < 9 && !lost:
				now = now.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				g, _ := exchange(t, now, a, b)
				got = append(got, tags(g)...)
			case !lost:
				now = now.Add(time.Second)
				a.Poll(now) // written, never arrives
				lost = true
			default:
				a.Disconnected()
				b.Disconnected()
				a.Connected(now)
				b.Connected(now)
				lost = false
			}
		}
		if lost {
			a.Disconnected()
			b.Disconnected()
			a.Connected(now)
			b.Connected(now)
		}
		now = now.Add(time.Minute)
		for range 10 {
			g, _ := exchange(t, now, a, b)
			got = append(got, tags(g)...)
			now = now.Add(time.Second)
		}
		recv := map[string][]string{}
		seen := map[string]bool{}
		for _, g := range got {
			if seen[g] {
				t.Fatalf("seed %d: %s delivered twice", seed, g)
			}
			seen[g] = true
			recv[byTag[g].pair] = append(recv[byTag[g].pair], g)
		}
		for pair, h := range handed {
			r := recv[pair]
			j := 0
			for _, tag := range h {
				if j < len(r) && r[j] == tag {
					j++
				}
			}
			if j != len(r) {
				t.Fatalf("seed %d: pair %s got %q, not a subsequence of %q", seed, pair, r, h)
			}
		}
		for tag, sn := range byTag {
			if (sn.hi || lastKey[sn.key] == tag) && !seen[tag] {
				t.Fatalf("seed %d: %s (%+v) never delivered", seed, tag, sn)
			}
		}
	}
}

// TestStaleAckAfterEpochChange: a restarted sender starts a new epoch after
// the peer's HELLO, but the peer's acks sent before it read the EPOCH frame
// still count frames of the old epoch. They must not acknowledge frames of
// the new one: here such an ack arrives while the new epoch's first frame
// is lost with the connection, and that frame's stanzas must still arrive.
func TestStaleAckAfterEpochChange(t *testing.T) {
	a, b := connectedPair(t, SessionConfig{})
	now := t0.Add(time.Second)
	a.Enqueue(now, 1, Item{Data: []byte("<x n='old'/>")})
	now = now.Add(time.Second)
	got, _ := exchange(t, now, a, b) // b has frame 1 of a's epoch; its ack is owed
	if len(got) != 1 {
		t.Fatalf("got %q", got)
	}
	// a is killed and restarts from its spool: frame 1 not acknowledged,
	// and a newer stanza queued.
	a2, err := NewSession(SessionConfig{}, counterIDs(500))
	if err != nil {
		t.Fatal(err)
	}
	a2.Restore(Restored{Epoch: a.Epoch(), Acked: 0, Frames: [][]uint64{{1}},
		Items: []Stored{{ID: 1, Item: Item{Data: []byte("<x n='old'/>")}}, {ID: 2, Item: Item{Data: []byte("<x n='new'/>")}}}}, now)
	b.Disconnected()
	a2.Connected(now)
	b.Connected(now)
	now = now.Add(2 * time.Second) // b's ack is due
	ha, hb := a2.Poll(now), b.Poll(now)
	deliver(t, now, b, ha)
	deliver(t, now, a2, hb) // a2 acks frame 1 from the HELLO and starts a new epoch
	fa, fb := a2.Poll(now), b.Poll(now)
	if fa == nil || fb == nil {
		t.Fatalf("a2 sent %x, b sent %x: want the new epoch's first frame and b's ack", fa, fb)
	}
	deliver(t, now, a2, fb) // b's ack, counting the old epoch
	// fa (EPOCH, DATA) is lost with the connection.
	a2.Disconnected()
	b.Disconnected()
	a2.Connected(now)
	b.Connected(now)
	got, _ = exchange(t, now.Add(time.Second), a2, b)
	if g := tags(got); !slices.Equal(g, []string{"new"}) {
		t.Fatalf("after the stale ack, b got %q, want [new]", g)
	}
}
