package sim

import (
	"bytes"
	"testing"
	"time"
)

// TestPlanFixedBySeed: a plan is a function of the scenario and the
// duration only, a shorter plan is the start of a longer one, and another
// seed gives other traffic.
func TestPlanFixedBySeed(t *testing.T) {
	sc := DefaultScenario()
	sc.Seed = 7
	long := Plan(sc, 90*time.Second)
	again := Plan(sc, 90*time.Second)
	short := Plan(sc, 30*time.Second)
	if len(long) == 0 || len(short) == 0 || len(short) >= len(long) {
		t.Fatalf("plan sizes: 30s %d, 90s %d stanzas", len(short), len(long))
	}
	for dir := range 2 {
		if h1, h2 := PlanHash(long, dir), PlanHash(again, dir); h1 != h2 {
			t.Errorf("dir %d: two plans of one seed differ: %s vs %s", dir, h1, h2)
		}
	}
	for i, s := range short {
		l := long[i]
		if s.Dir != l.Dir || s.At != l.At || !bytes.Equal(s.Raw, l.Raw) {
			t.Fatalf("stanza %d of the 30s plan is not the 90s plan's:\n%d %v %s\n%d %v %s", i, s.Dir, s.At, s.Raw, l.Dir, l.At, l.Raw)
		}
		if s.At >= 30*time.Second {
			t.Fatalf("stanza %d planned at %v, past the 30s", i, s.At)
		}
	}
	var n [2]int
	for i, s := range long {
		n[s.Dir]++
		if i > 0 && s.At < long[i-1].At {
			t.Fatalf("stanza %d at %v is before stanza %d at %v", i, s.At, i-1, long[i-1].At)
		}
	}
	if n[A2B] == 0 || n[B2A] == 0 {
		t.Fatalf("a direction is empty: %v", n)
	}
	sc.Seed = 8
	if other := Plan(sc, 90*time.Second); PlanHash(other, A2B) == PlanHash(long, A2B) {
		t.Error("seeds 7 and 8 planned the same a→b traffic")
	}
}

// TestPlanReplayTracking: replaying a plan through Offered/Arrived counts
// what the servers' own tracking counts for the same traffic.
func TestPlanReplayTracking(t *testing.T) {
	sc := DefaultScenario()
	p := Plan(sc, 60*time.Second)
	tr := NewTracker(sc.DomainA)
	for _, s := range p {
		at := PlanEpoch.Add(s.At)
		tr.Offered(s.Raw, at)
		tr.Arrived(s.Raw, at.Add(PlanDelay))
	}
	got := tr.Summary()
	for dir, d := range []DirSummary{got.A2B, got.B2A} {
		if d.Sent == 0 || d.Delivered != d.Sent || d.Lost != 0 || d.Duplicates != 0 {
			t.Errorf("dir %d: %v", dir, d)
		}
		if d.P50 != PlanDelay || d.Max != PlanDelay {
			t.Errorf("dir %d: latency p50 %v max %v, want %v", dir, d.P50, d.Max, PlanDelay)
		}
		if d.Probes == 0 || d.ProbesAnswered != d.Probes {
			t.Errorf("dir %d: probes %d answered %d", dir, d.Probes, d.ProbesAnswered)
		}
		if d.IQs == 0 || d.IQsAnswered > d.IQs {
			t.Errorf("dir %d: iqs %d answered %d", dir, d.IQs, d.IQsAnswered)
		}
	}
}
