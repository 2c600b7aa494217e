package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// TestTrafficFixedBySeed: two runs of one seed and duration, over
// different transports, offer the same stanzas in the same order in each
// direction (the plan's), and the gateways accept every one of them
// (fewer may cross: the presence mirror answers some locally).
func TestTrafficFixedBySeed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo twice")
	}
	p, err := emu.ParseProfile("lan")
	if err != nil {
		t.Fatal(err)
	}
	const dur = 6 * time.Second
	sc := sim.DefaultScenario()
	sc.Seed = 5
	sc.Intensity = 3 // enough traffic in a few seconds
	plan := sim.Plan(sc, dur)
	var want [2]int
	for _, s := range plan {
		want[s.Dir]++
	}
	for _, tr := range []string{"tcp", "datagram"} {
		r, err := demo.Run(context.Background(), demo.Options{Profile: p, Duration: dur, Seed: 5, Scenario: sc, Transport: tr, Drain: 20 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		for dir, accepted := range []uint64{r.A.AcceptedTotal(), r.B.AcceptedTotal()} {
			if r.Offered[dir] != want[dir] || r.OfferedHash[dir] != sim.PlanHash(plan, dir) {
				t.Errorf("%s dir %d: offered %d stanzas (hash %.12s), the plan has %d (hash %.12s)",
					tr, dir, r.Offered[dir], r.OfferedHash[dir], want[dir], sim.PlanHash(plan, dir))
			}
			if accepted != uint64(want[dir]) {
				t.Errorf("%s dir %d: the gateway accepted %d stanzas, %d planned", tr, dir, accepted, want[dir])
			}
		}
		if r.Frames[sim.A2B] == 0 || r.Frames[sim.B2A] == 0 {
			t.Errorf("%s: frames %v", tr, r.Frames)
		}
		if tr == "datagram" && r.HandshakeBytes[sim.A2B] == 0 {
			t.Errorf("datagram: no handshake bytes counted: %v", r.HandshakeBytes)
		}
		t.Logf("%s: offered a→b %d, b→a %d; frames %v; handshake %v", tr, r.Offered[0], r.Offered[1], r.Frames, r.HandshakeBytes)
	}
}
