package link

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestPacerKeepsModemQueueBounded: over TCP with both directions saturated
// for 10 minutes, on an emulated link whose serializer carries the IP
// headers and pure ACKs too (emu.SetHeaders, the same delayed-ACK model as
// the wire estimate), the modem's queue empties between the pacer's writes:
// in every 30 s of the run it drops to at most one second of airtime, so
// what the gateway hands the modem stays within the link rate and the
// queue stays in the gateway. A pacer that left out the TLS handshake, the
// TCP/IP headers or the pure ACKs this side returns would leave the queue
// growing by that share of the rate for as long as the link is saturated
// (after 10 minutes at iridium-2400: tens of seconds). In virtual time, so
// the bound is exact, not a speed.
func TestPacerKeepsModemQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEmuPair(t, TransportTCP, "iridium-2400,loss=0", 0)
		defer p.close()
		p.el.SetHeaders(true)
		for i := range 12000 { // about twice what 10 minutes of the link carry, both ways
			for _, l := range []*Link{p.a, p.b} {
				if err := l.Send(Item{Data: drainMessage(i), Pair: "p"}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
		}
		rate := p.el.Profile().RateBPS
		second := rate / 8 // bytes of one second of airtime
		const span, win, step = 10 * time.Minute, 30 * time.Second, 100 * time.Millisecond
		var minQ [2]int64
		var maxQ [2]int64
		air0 := p.el.Stats()
		for i := 1; i <= int(span/step); i++ {
			time.Sleep(step)
			st := p.el.Stats()
			for d, q := range []int64{st.AB.QueuedBytes, st.BA.QueuedBytes} {
				if i%int(win/step) == 1 {
					minQ[d] = q
				}
				minQ[d] = min(minQ[d], q)
				maxQ[d] = max(maxQ[d], q)
			}
			if i%int(win/step) == 0 {
				for d, name := range []string{"a→b", "b→a"} {
					if minQ[d] > second {
						t.Errorf("%s: %v: the modem's queue never dropped below %d B (%.1f s of airtime) in the last %v", name,
							time.Duration(i)*step, minQ[d], float64(minQ[d])/float64(second), win)
					}
				}
			}
		}
		st := p.el.Stats()
		for d, name := range []string{"a→b", "b→a"} {
			air := []int64{st.AB.AirBytes - air0.AB.AirBytes, st.BA.AirBytes - air0.BA.AirBytes}[d]
			t.Logf("%s: %d air bytes in %v (%.1f%% of the rate), modem queue at most %.1f s of airtime",
				name, air, span, 100*float64(air)/float64(second)/span.Seconds(), float64(maxQ[d])/float64(second))
			if float64(air) < 0.9*float64(second)*span.Seconds() {
				t.Errorf("%s: the link was not saturated (%d air bytes): the test does not load it", name, air)
			}
		}
	})
}
