package gateway

import (
	"sync"

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
	Name   string            `json:"name"`
	Link   LinkState         `json:"link"`
	Out    Direction         `json:"out"` // local servers -> link
	In     Direction         `json:"in"`  // link -> local servers
	Drops  map[string]uint64 `json:"drops"`
	Events map[string]uint64 `json:"s2s_events"`
}

// counters are the figures the gateway itself keeps; the link keeps the rest.
type counters struct {
	mu      sync.Mutex // guards the following fields
	out, in Direction
	drops   map[string]uint64 // refused, bounced or malformed, by reason
	events  map[string]uint64 // S2S events by kind
}

func newCounters() *counters {
	return &counters{
		out:    Direction{Stanzas: map[string]uint64{}},
		in:     Direction{Stanzas: map[string]uint64{}},
		drops:  map[string]uint64{},
		events: map[string]uint64{},
	}
}

func (c *counters) stanza(d *Direction, kind string, raw int) {
	c.mu.Lock()
	d.Stanzas[kind]++
	d.StanzasTotal++
	d.RawBytes += uint64(raw)
	c.mu.Unlock()
}

func (c *counters) drop(reason string) {
	c.mu.Lock()
	c.drops[reason]++
	c.mu.Unlock()
}

func (c *counters) event(kind string) {
	c.mu.Lock()
	c.events[kind]++
	c.mu.Unlock()
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
		Out:    copyDir(c.out),
		In:     copyDir(c.in),
		Drops:  copyMap(c.drops),
		Events: copyMap(c.events),
	}
	s.Out.LinkBytes, s.Out.WireBytes = ls.Out.LinkBytes, ls.WireOut.Bytes()
	s.In.LinkBytes, s.In.WireBytes = ls.In.LinkBytes, ls.WireIn.Bytes()
	return s
}

func copyDir(d Direction) Direction {
	d.Stanzas = copyMap(d.Stanzas)
	return d
}

func copyMap(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
