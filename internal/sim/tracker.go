package sim

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Direction indices into Summary.
const (
	A2B = 0
	B2A = 1
)

// Tracker records chat messages (by id) as one server sends them and the
// other receives them, and counts probes and iq round trips, so a run can
// be checked for loss, duplication, reordering and latency. It is safe
// for concurrent use: the two servers of a pair may be driven from
// different goroutines.
type Tracker struct {
	domainA string

	mu       sync.Mutex            // guards the fields below
	msgs     map[string]*msgRecord // by message id
	nextSeq  map[pairKey]uint64    // next send sequence per (from, to) bare pair
	lastSeq  map[pairKey]uint64    // highest delivered sequence + 1 per pair
	dirs     [2]dirCounters
	unknownD int             // deliveries of ids never sent (foreign traffic)
	iqIDs    map[string]bool // iq requests Offered and not yet answered (replayed plans)
}

type pairKey struct{ from, to string }

type msgRecord struct {
	dir       int
	pair      pairKey
	seq       uint64
	sent      time.Time
	delivered int
}

type dirCounters struct {
	sent, delivered, duplicates, reordered int
	probes, probesAnswered                 int
	iqs, iqsAnswered                       int
	latencies                              []time.Duration // ring of the latest maxSamples
	nextSample                             int
	maxLatency                             time.Duration
}

// maxSamples bounds the latencies kept for percentiles; the percentiles
// of a long run are those of its latest maxSamples deliveries.
const maxSamples = 1 << 16

// DirSummary is the tally of one direction.
type DirSummary struct {
	Sent       int // chat messages with a body handed out by Step
	Delivered  int // distinct ids that reached the other server
	Lost       int // Sent - Delivered: still pending or lost
	Duplicates int // deliveries of an id already delivered
	Reordered  int // deliveries older than one already delivered for the same pair

	// Send-to-delivery latency: percentiles over the latest deliveries
	// (see maxSamples), Max over the whole run.
	P50, P90, P99, Max time.Duration

	Probes         int // presence probes sent
	ProbesAnswered int // probes the other server answered
	IQs            int // iq get/set requests sent by the simulated users/server
	IQsAnswered    int // results or errors that came back for them
}

// Summary is the tally of both directions.
type Summary struct {
	A2B, B2A DirSummary
}

func newTracker(domainA string) *Tracker {
	return &Tracker{
		domainA: domainA,
		msgs:    make(map[string]*msgRecord),
		nextSeq: make(map[pairKey]uint64),
		lastSeq: make(map[pairKey]uint64),
	}
}

func (t *Tracker) dir(fromDomain string) int {
	if fromDomain == t.domainA {
		return A2B
	}
	return B2A
}

func (t *Tracker) sent(id string, from, to jid, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.msgs[id]; ok {
		return // id reuse: keep the first
	}
	p := pairKey{from.bare(), to.bare()}
	d := t.dir(from.domain)
	seq := t.nextSeq[p]
	t.nextSeq[p] = seq + 1
	t.msgs[id] = &msgRecord{dir: d, pair: p, seq: seq, sent: now}
	t.dirs[d].sent++
}

func (t *Tracker) delivered(id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.msgs[id]
	if !ok {
		t.unknownD++
		return
	}
	c := &t.dirs[m.dir]
	m.delivered++
	if m.delivered > 1 {
		c.duplicates++
		return
	}
	c.delivered++
	c.addLatency(now.Sub(m.sent))
	if last, ok := t.lastSeq[m.pair]; ok && m.seq < last {
		c.reordered++
	} else {
		t.lastSeq[m.pair] = m.seq + 1
	}
}

func (c *dirCounters) addLatency(d time.Duration) {
	c.maxLatency = max(c.maxLatency, d)
	if len(c.latencies) < maxSamples {
		c.latencies = append(c.latencies, d)
		return
	}
	c.latencies[c.nextSample] = d
	c.nextSample = (c.nextSample + 1) % maxSamples
}

func (t *Tracker) probeSent(fromDomain string) {
	t.mu.Lock()
	t.dirs[t.dir(fromDomain)].probes++
	t.mu.Unlock()
}

func (t *Tracker) probeAnswered(proberDomain string) {
	t.mu.Lock()
	t.dirs[t.dir(proberDomain)].probesAnswered++
	t.mu.Unlock()
}

func (t *Tracker) iqSent(fromDomain string) {
	t.mu.Lock()
	t.dirs[t.dir(fromDomain)].iqs++
	t.mu.Unlock()
}

func (t *Tracker) iqAnswered(requesterDomain string) {
	t.mu.Lock()
	t.dirs[t.dir(requesterDomain)].iqsAnswered++
	t.mu.Unlock()
}

// Latencies returns the send-to-delivery latencies of the latest deliveries
// (see maxSamples) per direction, in no particular order.
func (t *Tracker) Latencies() (a2b, b2a []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.dirs[A2B].latencies), slices.Clone(t.dirs[B2A].latencies)
}

// Summary returns the counts so far, with latency percentiles.
func (t *Tracker) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Summary{A2B: t.dirs[A2B].summary(), B2A: t.dirs[B2A].summary()}
}

func (c *dirCounters) summary() DirSummary {
	s := DirSummary{
		Sent: c.sent, Delivered: c.delivered, Lost: c.sent - c.delivered,
		Duplicates: c.duplicates, Reordered: c.reordered,
		Probes: c.probes, ProbesAnswered: c.probesAnswered,
		IQs: c.iqs, IQsAnswered: c.iqsAnswered,
	}
	if n := len(c.latencies); n > 0 {
		l := slices.Clone(c.latencies)
		slices.Sort(l)
		q := func(p float64) time.Duration { return l[min(n-1, int(p*float64(n)))] }
		s.P50, s.P90, s.P99, s.Max = q(0.50), q(0.90), q(0.99), c.maxLatency
	}
	return s
}

func (s DirSummary) String() string {
	return fmt.Sprintf("msgs sent=%d delivered=%d lost=%d dup=%d reordered=%d latency p50=%v p90=%v p99=%v max=%v probes=%d/%d iqs=%d/%d",
		s.Sent, s.Delivered, s.Lost, s.Duplicates, s.Reordered,
		s.P50, s.P90, s.P99, s.Max, s.ProbesAnswered, s.Probes, s.IQsAnswered, s.IQs)
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "a2b: %v\nb2a: %v", s.A2B, s.B2A)
	return b.String()
}
