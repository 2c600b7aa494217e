package sim

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestDriverLoop drives each server from its own goroutine with a real
// timer on Next, the way a live driver would, over a delaying pipe, in
// synctest's virtual time. It checks the Next/Step contract under a
// clock and that the shared Tracker is safe across goroutines.
func TestDriverLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 200 * time.Millisecond
		a, b := NewPair(DefaultScenario())
		type item struct {
			at  time.Time
			raw []byte
		}
		// pipe forwards stanzas after delay, in order.
		pipe := func(in <-chan item, out chan<- []byte) {
			for it := range in {
				time.Sleep(time.Until(it.at.Add(delay)))
				out <- it.raw
			}
			close(out)
		}
		stepping := make(chan struct{}) // closed: stop the workload
		drive := func(s *Server, in <-chan []byte, out chan<- item) {
			defer close(out)
			timer := time.NewTimer(0)
			defer timer.Stop()
			timerC := timer.C
			stop := stepping
			send := func(stanzas [][]byte) {
				for _, raw := range stanzas {
					out <- item{time.Now(), raw}
				}
			}
			for {
				select {
				case <-timerC:
					send(s.Step(time.Now()))
					timer.Reset(time.Until(s.Next()))
				case <-stop:
					stop = nil
					timerC = nil
				case raw, ok := <-in:
					if !ok {
						return
					}
					send(s.Handle(time.Now(), raw))
				}
			}
		}
		aOut, bOut := make(chan item, 4096), make(chan item, 4096)
		toA, toB := make(chan []byte, 4096), make(chan []byte, 4096)
		var wg sync.WaitGroup
		wg.Go(func() { pipe(aOut, toB) })
		wg.Go(func() { pipe(bOut, toA) })
		inA, inB := make(chan []byte), make(chan []byte)
		// quit closes the drivers' inputs once everything is quiet.
		quit := make(chan struct{})
		relay := func(from <-chan []byte, to chan<- []byte) {
			defer close(to)
			for {
				select {
				case raw := <-from:
					to <- raw
				case <-quit:
					return
				}
			}
		}
		wg.Go(func() { relay(toA, inA) })
		wg.Go(func() { relay(toB, inB) })
		wg.Go(func() { drive(a, inA, aOut) })
		wg.Go(func() { drive(b, inB, bOut) })

		time.Sleep(60 * time.Second)
		close(stepping)
		time.Sleep(10 * time.Second) // in-flight stanzas and their answers land
		synctest.Wait()
		close(quit)
		wg.Wait()

		sum := a.Tracker().Summary()
		t.Logf("\n%v", sum)
		for _, d := range []DirSummary{sum.A2B, sum.B2A} {
			if d.Sent == 0 || d.Delivered != d.Sent || d.Duplicates != 0 || d.Reordered != 0 {
				t.Errorf("not exactly once in order: %v", d)
			}
			if d.P50 != delay || d.Max != delay {
				t.Errorf("latency p50=%v max=%v, want %v", d.P50, d.Max, delay)
			}
			if d.Probes == 0 || d.ProbesAnswered != d.Probes || d.IQsAnswered != d.IQs {
				t.Errorf("unanswered requests: %v", d)
			}
		}
	})
}
