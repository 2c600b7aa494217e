package sim

import "time"

// Generate runs a pair back to back, without gateways: every stanza one
// server produces reaches the other's Handle delay later, in order. It
// runs the workload from start for dur, then lets what is in flight land,
// calling emit for every stanza in the order produced (dir is A2B or
// B2A). It returns the pair's summary. Benchmarks and the codec's
// dictionary training use it to get a deterministic traffic corpus.
func Generate(sc Scenario, start time.Time, dur, delay time.Duration, emit func(dir int, at time.Time, raw []byte)) Summary {
	a, b := NewPair(sc)
	runBackToBack(a, b, start, dur, delay, emit)
	return a.Tracker().Summary()
}

func runBackToBack(a, b *Server, start time.Time, dur, delay time.Duration, emit func(dir int, at time.Time, raw []byte)) time.Time {
	type wire struct {
		at  time.Time
		to  *Server
		raw []byte
	}
	var q []wire // FIFO: times never decrease
	record := func(from *Server, now time.Time, out [][]byte) {
		to, dir := b, A2B
		if from == b {
			to, dir = a, B2A
		}
		for _, raw := range out {
			if emit != nil {
				emit(dir, now, raw)
			}
			q = append(q, wire{now.Add(delay), to, raw})
		}
	}
	due := func(s *Server, now time.Time) bool { return !s.Next().After(now) }
	end := start.Add(dur)
	now := start
	for {
		next := a.Next()
		if n := b.Next(); n.Before(next) {
			next = n
		}
		if len(q) > 0 && q[0].at.Before(next) {
			next = q[0].at
		}
		if next.After(end) {
			break
		}
		if next.After(now) {
			now = next
		}
		if due(a, now) {
			record(a, now, a.Step(now))
		}
		if due(b, now) {
			record(b, now, b.Step(now))
		}
		for len(q) > 0 && !q[0].at.After(now) {
			w := q[0]
			q = q[1:]
			record(w.to, now, w.to.Handle(now, w.raw))
		}
	}
	// Let what is in flight land, without new workload.
	for len(q) > 0 {
		w := q[0]
		q = q[1:]
		if w.at.After(now) {
			now = w.at
		}
		record(w.to, now, w.to.Handle(now, w.raw))
	}
	return now
}
