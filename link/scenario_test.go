package link

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// scenario is what TestTransportScenarios measured for one transport over
// one profile.
type scenario struct {
	transport, profile string
	up                 time.Duration // until both sides had the peer's HELLO
	handshake          uint64        // first connection: handshake wire bytes, both sides
	idlePerHour        uint64        // wire bytes both ways in an idle hour
	backlog            int           // stanzas queued during the outage, both ways
	first, drained     time.Duration // from the link's return: first queued stanza delivered, all of them
	reconnect          uint64        // handshake wire bytes, both sides, from the outage's start until drained
	quicDrops          uint64
	err                string
}

// TestTransportScenarios measures, in virtual time over the emulator with
// IP headers and pure ACKs on its serializer (emu.Link.SetHeaders), each
// transport's first handshake, an idle hour, and a 10-minute outage with
// traffic queued during it, on the profiles of the transport table in
// docs/measurements.md. A measurement, not a check (it only fails if a
// stanza is lost): run it with ISTHMUS_MEASURE=1 (make transport-table).
func TestTransportScenarios(t *testing.T) {
	if os.Getenv("ISTHMUS_MEASURE") == "" {
		t.Skip("a measurement: set ISTHMUS_MEASURE=1 (make transport-table)")
	}
	transports := []string{TransportTCP, TransportQUIC, TransportDatagram}
	if s := os.Getenv("ISTHMUS_TRANSPORTS"); s != "" {
		transports = strings.Split(s, ",")
	}
	profiles := []string{"vhf-9600", "iridium-2400", "hf-2400", "geo-1m"}
	if s := os.Getenv("ISTHMUS_PROFILES"); s != "" {
		profiles = strings.Split(s, ",")
	}
	var rows []scenario
	for _, prof := range profiles {
		for _, tr := range transports {
			t.Run(tr+"/"+prof, func(t *testing.T) {
				var r scenario
				synctest.Test(t, func(t *testing.T) { r = runScenario(t, tr, prof) })
				rows = append(rows, r)
			})
		}
	}
	var b strings.Builder
	fmt.Fprintln(&b, "| profile | transport | first handshake | up after | idle | 10-min outage: backlog | first stanza | all delivered | reconnect bytes |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		if r.err != "" {
			fmt.Fprintf(&b, "| %s | %s | %s |||||||\n", r.profile, r.transport, r.err)
			continue
		}
		drops := ""
		if r.quicDrops > 0 {
			drops = fmt.Sprintf(" (%d packets dropped in the gateway)", r.quicDrops)
		}
		fmt.Fprintf(&b, "| %s | %s | %d B | %.1f s | %d B/hour | %d stanzas | %.1f s | %.1f s | %d B%s |\n",
			r.profile, r.transport, r.handshake, r.up.Seconds(), r.idlePerHour, r.backlog, r.first.Seconds(), r.drained.Seconds(), r.reconnect, drops)
	}
	t.Logf("transport scenarios (virtual time, emulator with headers and ACKs on the serializer; wire bytes both ways):\n%s", b.String())
}

// handshakeBytes is the transport handshake wire of both sides so far.
func (p *emuPair) handshakeBytes() uint64 {
	var n uint64
	for _, l := range []*Link{p.a, p.b} {
		st := l.Stats()
		n += st.HandshakeOut + st.Datagram.HandshakeBytes
	}
	return n
}

func runScenario(t *testing.T, tr, profile string) scenario {
	r := scenario{transport: tr, profile: profile}
	// The gateway's reconnect defaults (1 s doubling to 60 s).
	p := newEmuPair(t, tr, profile, 0, func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Second, 60*time.Second })
	defer p.close()
	p.el.SetHeaders(true)
	start := time.Now()
	for !(p.a.Stats().Up && p.b.Stats().Up) {
		if time.Since(start) > 10*time.Minute {
			r.err = "not up after 10 minutes"
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.up = time.Since(start)
	time.Sleep(5 * time.Second) // the handshake's last packets
	r.handshake = p.handshakeBytes()

	// An idle hour (the profile's own outages, if any, included).
	w0 := p.wire()
	time.Sleep(time.Hour)
	r.idlePerHour = p.wire() - w0

	// Traffic both ways, one chat message every 10 s from each side; a
	// 10-minute outage after a minute; the traffic goes on meanwhile and
	// after.
	var mu sync.Mutex
	sent := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	base := p.atB.len() + p.atA.len()
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, l := range []*Link{p.a, p.b} {
				if err := l.Send(Item{Data: drainMessage(i), Pair: "p"}); err != nil {
					t.Errorf("send %d: %v", i, err)
				}
			}
			mu.Lock()
			sent += 2
			mu.Unlock()
		}
	}()
	delivered := func() int { return p.atB.len() + p.atA.len() - base }
	time.Sleep(time.Minute)
	for delivered() < 12 {
		time.Sleep(time.Second)
	}
	hs0 := p.handshakeBytes()
	const outage = 10 * time.Minute
	p.el.Down(outage)
	time.Sleep(outage)
	mu.Lock()
	need := sent
	mu.Unlock()
	had := delivered()
	r.backlog = need - had
	back := time.Now()
	for delivered() < need {
		if r.first == 0 && delivered() > had {
			r.first = time.Since(back)
		}
		if time.Since(back) > time.Hour {
			r.err = fmt.Sprintf("%d of %d delivered an hour after the outage", delivered(), need)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.first == 0 {
		r.first = time.Since(back)
	}
	r.drained = time.Since(back)
	time.Sleep(10 * time.Second)
	r.reconnect = p.handshakeBytes() - hs0
	close(stop)
	<-done
	mu.Lock()
	total := sent
	mu.Unlock()
	for delivered() < total && r.err == "" {
		time.Sleep(time.Second)
	}
	r.quicDrops = p.a.Stats().QUICDrops + p.b.Stats().QUICDrops
	t.Logf("%s %s: up %.1f s, handshake %d B, idle %d B/hour, outage backlog %d, first %.1f s, drained %.1f s, reconnect %d B, quic drops %d %s",
		tr, profile, r.up.Seconds(), r.handshake, r.idlePerHour, r.backlog, r.first.Seconds(), r.drained.Seconds(), r.reconnect, r.quicDrops, r.err)
	return r
}
