package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// PlanEpoch is the virtual time a plan starts at: timestamps inside the
// stanzas (delay stamps, idle since) count from it, so a plan's bytes do
// not depend on when it is made.
var PlanEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// PlanDelay is the one-way delay the plan assumes between the servers:
// the answers and follow-ups of one side reach the other this long after
// what they answer, whatever the link under test actually does.
const PlanDelay = 500 * time.Millisecond

// Planned is one stanza of a plan: the side that sends it (A2B: server A,
// B2A: server B), when (since the start of the run), and its bytes.
type Planned struct {
	Dir int
	At  time.Duration
	Raw []byte
}

// Plan is the traffic of a run fixed in advance from the scenario (its
// seed): the pair runs back to back with PlanDelay between them, from
// PlanEpoch for dur, and every stanza either server sends in that time,
// workload and answers alike, is recorded with its time. Stanzas sent
// after dur (answers to what was in flight) are not part of the plan, so
// the plan of a run is the start of the plan of any longer run with the
// same scenario. A driver replaying it offers the same stanzas in the same
// order whatever the link in between does (the demo does so): the load no
// longer depends on when things arrive.
func Plan(sc Scenario, dur time.Duration) []Planned {
	a, b := NewPair(sc)
	var out []Planned
	end := PlanEpoch.Add(dur)
	runBackToBack(a, b, PlanEpoch, dur, PlanDelay, func(dir int, at time.Time, raw []byte) {
		if at.Before(end) {
			out = append(out, Planned{Dir: dir, At: at.Sub(PlanEpoch), Raw: raw})
		}
	})
	return out
}

// PlanHash is a digest of the stanzas of one direction of a plan, in
// order (length-prefixed, so boundaries count), in hex; PlanHasher
// computes the same digest incrementally.
func PlanHash(p []Planned, dir int) string {
	var h PlanHasher
	for _, s := range p {
		if s.Dir == dir {
			h.Add(s.Raw)
		}
	}
	return h.Sum()
}

// PlanHasher digests a sequence of stanzas as PlanHash does. The zero
// value is ready; it is not safe for concurrent use.
type PlanHasher struct {
	sum   []byte
	n     int
	bytes uint64
}

// Add adds one stanza.
func (h *PlanHasher) Add(raw []byte) {
	d := sha256.New()
	d.Write(h.sum)
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(raw)))
	d.Write(l[:])
	d.Write(raw)
	h.sum = d.Sum(nil)
	h.n++
	h.bytes += uint64(len(raw))
}

// Bytes is the total size of the stanzas added.
func (h *PlanHasher) Bytes() uint64 { return h.bytes }

// Len is the number of stanzas added.
func (h *PlanHasher) Len() int { return h.n }

// Sum is the digest so far, in hex.
func (h *PlanHasher) Sum() string { return hex.EncodeToString(h.sum) }

// NewTracker returns a Tracker for a pair whose side A has domainA, for
// a driver that replays a plan and reports what it offers and what
// arrives with Offered and Arrived.
func NewTracker(domainA string) *Tracker { return newTracker(domainA) }

// Offered records a stanza of a replayed plan as its server hands it to
// S2S at now, as Step and Handle would have: chat messages with a body
// (by id), presence probes, iq requests. Anything else, or anything
// unparseable, is not counted.
func (t *Tracker) Offered(raw []byte, now time.Time) {
	n, from, to, ok := parseAddressed(raw)
	if !ok {
		return
	}
	switch n.XMLName.Local {
	case "message":
		if id := n.attr("id"); id != "" && n.child("", "body") != nil && n.attr("type") != "error" {
			t.sent(id, from, to, now)
		}
	case "presence":
		if n.attr("type") == "probe" {
			t.probeSent(from.domain)
		}
	case "iq":
		if typ := n.attr("type"); typ == "get" || typ == "set" {
			t.iqSent(from.domain)
			t.mu.Lock()
			if t.iqIDs == nil {
				t.iqIDs = make(map[string]bool)
			}
			t.iqIDs[n.attr("id")] = true
			t.mu.Unlock()
		}
	}
}

// Arrived records a stanza of a replayed plan as it reaches the other
// server at now: a chat message's delivery, the answering of a probe
// (the receiving server answers at once), an iq result or error for a
// request Offered (once per id).
func (t *Tracker) Arrived(raw []byte, now time.Time) {
	n, from, to, ok := parseAddressed(raw)
	if !ok {
		return
	}
	switch n.XMLName.Local {
	case "message":
		if id := n.attr("id"); id != "" && n.child("", "body") != nil && n.attr("type") != "error" {
			t.delivered(id, now)
		}
	case "presence":
		if n.attr("type") == "probe" {
			t.probeAnswered(from.domain)
		}
	case "iq":
		if typ := n.attr("type"); typ == "result" || typ == "error" {
			id := n.attr("id")
			t.mu.Lock()
			known := t.iqIDs[id]
			delete(t.iqIDs, id)
			t.mu.Unlock()
			if known {
				t.iqAnswered(to.domain)
			}
		}
	}
}

func parseAddressed(raw []byte) (n *node, from, to jid, ok bool) {
	if len(raw) == 0 || len(raw) > maxStanza {
		return nil, jid{}, jid{}, false
	}
	n, err := parseStanza(raw)
	if err != nil {
		return nil, jid{}, jid{}, false
	}
	from, ok1 := parseJID(n.attr("from"))
	to, ok2 := parseJID(n.attr("to"))
	return n, from, to, ok1 && ok2
}
