package sim

import (
	"slices"
	"testing"
	"time"
)

func TestTrackerLatencies(t *testing.T) {
	tr := newTracker("a.test")
	a, _ := parseJID("alice@a.test/x")
	b, _ := parseJID("bob@b.test/y")
	t0 := time.Unix(1000, 0)
	tr.sent("m1", a, b, t0)
	tr.sent("m2", b, a, t0)
	tr.sent("m3", a, b, t0)
	tr.delivered("m1", t0.Add(2*time.Second))
	tr.delivered("m2", t0.Add(3*time.Second))
	tr.delivered("m3", t0.Add(500*time.Millisecond))
	tr.delivered("m3", t0.Add(9*time.Second)) // duplicate: no second sample
	ab, ba := tr.Latencies()
	slices.Sort(ab)
	if !slices.Equal(ab, []time.Duration{500 * time.Millisecond, 2 * time.Second}) || !slices.Equal(ba, []time.Duration{3 * time.Second}) {
		t.Fatalf("latencies a2b %v b2a %v", ab, ba)
	}
	ab[0] = 0 // a copy: the tracker keeps its own
	if again, _ := tr.Latencies(); slices.Contains(again, 0) {
		t.Fatal("Latencies returned the tracker's own slice")
	}
}
