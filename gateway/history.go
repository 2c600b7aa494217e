package gateway

import (
	"sync"
	"time"
)

// historySize is how many samples the status page keeps: one a second for
// an hour.
const historySize = 3600

// Sample is the gateway's cumulative figures at one moment, as the status
// page plots them.
type Sample struct {
	Time     time.Time `json:"t"`
	OutRaw   uint64    `json:"out_raw"`
	OutWire  uint64    `json:"out_wire"`
	InRaw    uint64    `json:"in_raw"`
	InWire   uint64    `json:"in_wire"`
	LinkUp   bool      `json:"link_up"`
	Queued   int       `json:"queued"` // stanzas waiting or unacknowledged
	RTTMilli float64   `json:"rtt_ms"`
}

func (o *ops) sample(now time.Time) Sample {
	s := o.g.Snapshot()
	ls := o.g.link.Stats()
	return Sample{
		Time: now, OutRaw: s.Out.RawBytes, OutWire: s.Out.WireBytes, InRaw: s.In.RawBytes, InWire: s.In.WireBytes,
		LinkUp: s.Link.Up, Queued: s.Link.Waiting + s.Link.Unacked, RTTMilli: float64(ls.RTT) / float64(time.Millisecond),
	}
}

// history is a ring of the latest samples.
type history struct {
	mu   sync.Mutex // guards the following fields
	ring []Sample
	next int  // where the next sample goes
	full bool // the ring has wrapped
}

func newHistory(n int) *history { return &history{ring: make([]Sample, n)} }

func (h *history) add(s Sample) {
	h.mu.Lock()
	h.ring[h.next] = s
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
	h.mu.Unlock()
}

// since returns the samples taken after t, oldest first.
func (h *history) since(t time.Time) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Sample
	take := func(ss []Sample) {
		for _, s := range ss {
			if s.Time.After(t) {
				out = append(out, s)
			}
		}
	}
	if h.full {
		take(h.ring[h.next:])
	}
	take(h.ring[:h.next])
	return out
}
