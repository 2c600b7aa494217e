package link

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestPacerCountsOwnAcks: with both directions saturated over TCP, each
// side's estimated wire (its data segments and the pure ACKs it returns
// for the peer's) stays within the link rate: the pacer charges the ACKs
// to the next write. In virtual time, so the bound is exact, not a speed.
func TestPacerCountsOwnAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEmuPair(t, TransportTCP, "iridium-2400,loss=0", 0)
		defer p.close()
		p.waitUp(t, time.Minute)
		for i := range 2000 { // far more than 3 minutes of the link, both ways
			for _, l := range []*Link{p.a, p.b} {
				if err := l.Send(Item{Data: drainMessage(i), Pair: "p"}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
		}
		time.Sleep(30 * time.Second) // saturated
		const span = 2 * time.Minute
		a0, b0 := p.a.Stats().WireOut, p.b.Stats().WireOut
		time.Sleep(span)
		a1, b1 := p.a.Stats().WireOut, p.b.Stats().WireOut
		rate := p.el.Profile().RateBPS
		budget := float64(rate) / 8 * span.Seconds()
		for _, s := range []struct {
			name   string
			w0, w1 Wire
		}{{"a", a0, a1}, {"b", b0, b1}} {
			got := float64(s.w1.Bytes() - s.w0.Bytes())
			acks := s.w1.Acks - s.w0.Acks
			t.Logf("%s: %.0f wire bytes in %v (%.1f%% of the rate), %d pure ACKs", s.name, got, span, 100*got/budget, acks)
			if acks == 0 {
				t.Errorf("%s returned no ACKs: the test does not load both directions", s.name)
			}
			// One write may go past the window's end before the pacer waits.
			if slack := 2000.0; got > budget+slack {
				t.Errorf("%s: %.0f wire bytes in %v, over the rate's %.0f (+%.0f for one write)", s.name, got, span, budget, slack)
			}
		}
	})
}
