package link

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestDrainAfterOutage measures, in virtual time over the emulator, how long
// the queue takes to drain after a 10-minute outage during steady traffic,
// with the gateway's default reconnect (1 s doubling to 60 s) and session
// settings. The figures go into the package doc and the issue.
func TestDrainAfterOutage(t *testing.T) {
	cases := []struct {
		transport, profile string
		perSecond          int // steady messages per second
	}{
		{TransportTCP, "vhf-9600", 1},
		{TransportTCP, "vhf-9600", 3},
		{TransportTCP, "bgan-64k", 5},
		{TransportTCP, "bgan-64k", 20},
		{TransportQUIC, "bgan-64k", 5},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%d", c.transport, c.profile, c.perSecond), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { drain(t, c.transport, c.profile, c.perSecond) })
		})
	}
}

var drainWords = strings.Fields(`the a to and of we is in on at for with will be are have not this that it
from by as our your can all any now then when what where who how ok yes no please thanks copy roger out
position course speed wind sea swell rain fog clear cloud visibility heading bearing range port starboard
engine fuel water food crew watch deck bridge galley hold anchor mooring harbour pilot tug berth cargo
eta etd arrival departure delay weather forecast report update check status list order spare part pump
valve filter battery radio antenna signal noise message call contact email phone doctor medical fever
rest sleep shift noon midnight morning evening tomorrow today yesterday monday tuesday friday sunday
north south east west miles knots hours minutes degrees metres tonnes litres percent high low good bad`)

// drainMessage is a plausible chat message between one of ten pairs: the
// body is 6 to 20 words drawn from a small vocabulary, so it compresses as
// text does, not as a repeated template would.
func drainMessage(i int) []byte {
	rng := rand.New(rand.NewPCG(uint64(i), 99))
	words := make([]string, 6+rng.IntN(15))
	for j := range words {
		words[j] = drainWords[rng.IntN(len(drainWords))]
	}
	return fmt.Appendf(nil, "<message from='crew%d@ship.example/radio' to='ops%d@shore.example' type='chat' id='%x-%d'><body>%s</body></message>",
		i%10, i%3, rng.Uint32(), i, strings.Join(words, " "))
}

func drain(t *testing.T, tr, profile string, perSecond int) {
	const outage = 10 * time.Minute
	p := newEmuPair(t, tr, profile, 0, func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Second, 60*time.Second })
	defer p.close()
	p.waitUp(t, 5*time.Minute)

	// Steady traffic from a to b, one message every 1/perSecond.
	stop := make(chan struct{})
	sent := make(chan int, 1)
	var rawBytes int
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-stop:
				sent <- n
				return
			case <-tick.C:
				m := drainMessage(n)
				rawBytes += len(m)
				if err := p.a.Send(Item{Data: m, Pair: "p"}); err != nil {
					t.Errorf("send %d: %v", n, err)
				}
				n++
			}
		}
	}()
	count := func() int { // messages handed over so far (the sender's count, read via the link)
		st := p.a.Stats()
		return int(st.Out.Stanzas) + st.Waiting
	}

	time.Sleep(2 * time.Minute) // steady state
	w0 := p.wire()
	time.Sleep(time.Minute)
	util := float64(p.wire()-w0) * 8 / 60 / float64(p.el.Profile().RateBPS)

	p.el.Down(outage)
	time.Sleep(outage)
	back := time.Now()
	backlog := count() - p.atB.len()
	need := count()

	had := p.atB.len()
	var reconnect, first, drained time.Duration
	for drained == 0 {
		time.Sleep(100 * time.Millisecond)
		el := time.Since(back)
		if reconnect == 0 && p.a.Stats().Up && p.b.Stats().Up {
			reconnect = el
		}
		if first == 0 && p.atB.len() > had {
			first = el
		}
		if p.atB.len() >= need {
			drained = el
		}
		if el > time.Hour {
			t.Fatalf("%s %s: %d of %d delivered an hour after the outage", tr, profile, p.atB.len(), need)
		}
	}
	time.Sleep(time.Minute)
	close(stop)
	total := <-sent
	time.Sleep(2 * time.Minute)

	t.Logf("FIGURE drain %s %s: steady %d msg/s (%.0f B raw each, %.0f%% of the link's wire rate), %v outage: backlog %d msgs; after the link returned: session up %.1f s, first stanza %.1f s, backlog delivered %.1f s (%.1f msg/s from the first)",
		tr, profile, perSecond, float64(rawBytes)/float64(total), 100*util, outage, backlog, reconnect.Seconds(), first.Seconds(), drained.Seconds(),
		float64(need-had)/max(drained-first, 100*time.Millisecond).Seconds())

	// Every message arrived once, in order.
	got := p.atB.snapshot()
	if len(got) != total {
		t.Fatalf("%d of %d messages arrived", len(got), total)
	}
	for i, g := range got {
		if !strings.Contains(g, fmt.Sprintf("-%d'><body>", i)) {
			t.Fatalf("message %d is %.80s", i, g)
		}
	}
}
