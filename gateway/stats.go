package gateway

import (
	"maps"
	"sync"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
)

// Direction holds one direction's figures.
type Direction struct {
	Stanzas      map[string]uint64 `json:"stanzas"` // by kind: message, presence, iq
	StanzasTotal uint64            `json:"stanzas_total"`
	RawBytes     uint64            `json:"raw_bytes"`
	LinkBytes    uint64            `json:"link_bytes"`
	WireBytes    uint64            `json:"wire_bytes"`
}

// Ratio is raw bytes per wire byte (0 when nothing was sent).
func (d Direction) Ratio() float64 {
	if d.WireBytes == 0 {
		return 0
	}
	return float64(d.RawBytes) / float64(d.WireBytes)
}

// LinkState is the link's part of a snapshot.
type LinkState struct {
	Up                bool   `json:"up"`
	Connects          uint64 `json:"connects"`
	Resumes           uint64 `json:"resumes"`
	EpochChanges      uint64 `json:"epoch_changes"`
	Waiting           int    `json:"waiting"`
	Unacked           int    `json:"unacked"`
	Retransmitted     uint64 `json:"retransmitted_bytes"`
	HandshakeFailures uint64 `json:"handshake_failures"`
}

// Snapshot is everything a gateway counts, as served at /stats.
type Snapshot struct {
	Name string    `json:"name"`
	Link LinkState `json:"link"`
	Out  Direction `json:"out"` // local servers -> link
	In   Direction `json:"in"`  // link -> local servers
	// Accepted counts stanzas accepted from local servers, by kind;
	// Delivered those written to local servers' streams.
	Accepted  map[string]uint64 `json:"accepted"`
	Delivered map[string]uint64 `json:"delivered"`
	// Bounces counts the stanzas bounced to their sender with an error,
	// Drops those discarded (no error reply possible), by dropReason.
	Bounces map[string]uint64 `json:"bounces"`
	Drops   map[string]uint64 `json:"drops"`
	Events  map[string]uint64 `json:"s2s_events"` // "kind" or "kind:reason"
}

// eventKey is what an S2S event is counted under: its kind and, for
// refusals and stream errors, a short reason (limit events: the limit).
type eventKey struct {
	kind   s2s.EventKind
	reason string
}

func (k eventKey) String() string {
	if k.reason == "" {
		return string(k.kind)
	}
	return string(k.kind) + ":" + k.reason
}

// bounceKey is what a bounce is counted under: its reason and condition
// (one per reason, except for ingress refusals).
type bounceKey struct {
	reason dropReason
	cond   string
}

// counters are the figures the gateway itself keeps; the link keeps the rest.
type counters struct {
	mu                  sync.Mutex // guards the following fields
	out, in             Direction
	accepted, delivered map[string]uint64 // by stanza kind
	bounced             map[bounceKey]uint64
	dropped             [numDropReasons]uint64
	events              map[eventKey]uint64
}

func newCounters() *counters {
	return &counters{
		out:       Direction{Stanzas: map[string]uint64{}},
		in:        Direction{Stanzas: map[string]uint64{}},
		accepted:  map[string]uint64{},
		delivered: map[string]uint64{},
		bounced:   map[bounceKey]uint64{},
		events:    map[eventKey]uint64{},
	}
}

func (c *counters) stanza(d *Direction, kind string, raw int) {
	c.mu.Lock()
	d.Stanzas[kind]++
	d.StanzasTotal++
	d.RawBytes += uint64(raw)
	c.mu.Unlock()
}

// count adds one to m[kind]; m is accepted or delivered.
func (c *counters) count(m map[string]uint64, kind string) {
	c.mu.Lock()
	m[kind]++
	c.mu.Unlock()
}

// bounce counts a stanza bounced for r with condition cond.
func (c *counters) bounce(r dropReason, cond string) {
	c.mu.Lock()
	c.bounced[bounceKey{r, cond}]++
	c.mu.Unlock()
}

// drop counts a stanza (or, for dropStateWrite, a write) discarded for r.
func (c *counters) drop(r dropReason) {
	c.mu.Lock()
	c.dropped[r]++
	c.mu.Unlock()
}

// event counts an S2S event: refusals and stream errors by their short
// reason, limit events by the limit (Detail) alone, the rest by kind; an
// event naming a limit also counts under "limit:<detail>".
func (c *counters) event(e s2s.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Kind {
	case s2s.EventStreamError, s2s.EventInRefused:
		c.events[eventKey{e.Kind, shortReason(e.Reason)}]++
	case s2s.EventLimit:
	default:
		c.events[eventKey{kind: e.Kind}]++
	}
	if e.Detail != "" {
		c.events[eventKey{s2s.EventLimit, shortReason(e.Detail)}]++
	}
}

// bounces returns the bounce counts by key.
func (c *counters) bounceCounts() map[bounceKey]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.bounced)
}

func (c *counters) snapshot(name string, ls link.Stats) Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{
		Name: name,
		Link: LinkState{
			Up: ls.Up, Connects: ls.Connects, Resumes: ls.Resumes, EpochChanges: ls.EpochChanges,
			Waiting: ls.Waiting, Unacked: ls.Unacked, Retransmitted: ls.Out.Retransmitted,
			HandshakeFailures: ls.HandshakeFailures,
		},
		Out:       copyDir(c.out),
		In:        copyDir(c.in),
		Accepted:  maps.Clone(c.accepted),
		Delivered: maps.Clone(c.delivered),
		Bounces:   map[string]uint64{},
		Drops:     map[string]uint64{},
		Events:    make(map[string]uint64, len(c.events)),
	}
	for k, v := range c.bounced {
		s.Bounces[k.reason.String()] += v
	}
	for r, v := range c.dropped {
		if v > 0 {
			s.Drops[dropReason(r).String()] = v
		}
	}
	for k, v := range c.events {
		s.Events[k.String()] += v
	}
	s.Out.LinkBytes, s.Out.WireBytes = ls.Out.LinkBytes, ls.WireOut.Bytes()
	s.In.LinkBytes, s.In.WireBytes = ls.In.LinkBytes, ls.WireIn.Bytes()
	return s
}

// BouncedTotal is the number of stanzas bounced, for all reasons.
func (s Snapshot) BouncedTotal() uint64 { return sum(s.Bounces) }

// AcceptedTotal is the number of stanzas accepted from local servers.
func (s Snapshot) AcceptedTotal() uint64 { return sum(s.Accepted) }

// DeliveredTotal is the number of stanzas written to local servers.
func (s Snapshot) DeliveredTotal() uint64 { return sum(s.Delivered) }

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func copyDir(d Direction) Direction {
	d.Stanzas = maps.Clone(d.Stanzas)
	return d
}
