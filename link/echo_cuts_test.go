package link

import (
	"cmp"
	"fmt"
	"math/rand"
	"regexp"
	"slices"
	"testing"
	"time"
)

// restartFromSpool returns s as restarted from a spool holding all its state.
func restartFromSpool(t *testing.T, s *Session, cfg SessionConfig, ids func() uint32, now time.Time) *Session {
	r := Restored{Epoch: s.epoch, Acked: s.acked, PeerEpoch: s.peerEpoch, H: s.h}
	var all []Stored
	for _, f := range s.unacked {
		var fr []uint64
		for _, e := range f.entries {
			fr = append(fr, e.id)
			all = append(all, Stored{ID: e.id, Item: e.Item})
		}
		r.Frames = append(r.Frames, fr)
	}
	for _, q := range [][]*entry{s.hi, s.lo} {
		for _, e := range q {
			all = append(all, Stored{ID: e.id, Item: e.Item})
		}
	}
	slices.SortFunc(all, func(x, y Stored) int { return cmp.Compare(x.ID, y.ID) })
	r.Items = all
	s2, err := NewSession(cfg, ids)
	if err != nil {
		t.Fatal(err)
	}
	s2.Restore(r, now)
	return s2
}

var cutsIDRe = regexp.MustCompile(` id='([0-9a-f]{32,})'`)

// TestEchoRandomCuts: both sides send messages and receipts echoing the
// other's message ids; connections are cut at random points (frames in
// flight lost), decoders are lost and either side restarts from its spool.
// No Receive may fail. (25 seeds; 300 passed once, in 38 s.)
func TestEchoRandomCuts(t *testing.T) {
	for seed := int64(1); seed <= 25; seed++ {
		rng := rand.New(rand.NewSource(seed))
		cfgA, cfgB := SessionConfig{MaxBatchBytes: 300 + rng.Intn(2000)}, SessionConfig{MaxBatchBytes: 300 + rng.Intn(2000)}
		idsA, idsB := counterIDs(100), counterIDs(100000)
		a, _ := NewSession(cfgA, idsA)
		b, _ := NewSession(cfgB, idsB)
		restarts := 0
		now := t0
		var seq uint64
		msg := func(s *Session, from string, i int) {
			seq++
			s.Enqueue(now, seq, Item{Data: fmt.Appendf(nil, "<message to='x@peer/r' from='%s@me/r' id='%s' type='chat'><body>m</body></message>", from, echoID(i))})
		}
		rcpt := func(s *Session, id string) {
			seq++
			s.Enqueue(now, seq, Item{Data: fmt.Appendf(nil, "<message to='x@peer/r' from='y@me/r' id='%s'><received xmlns='urn:xmpp:receipts' id='%s'/></message>", echoID(int(seq)+900000), id)})
		}
		n := 0
		for conn := 0; conn < 30; conn++ {
			if rng.Intn(12) == 0 {
				a = restartFromSpool(t, a, cfgA, idsA, now)
				restarts++
			}
			if rng.Intn(12) == 0 {
				b = restartFromSpool(t, b, cfgB, idsB, now)
				restarts++
			}
			if rng.Intn(5) == 0 && a.h > 0 && !a.decLost {
				a.decLost = true // as after a block a could not decode
			}
			if rng.Intn(5) == 0 && b.h > 0 && !b.decLost {
				b.decLost = true
			}
			a.Connected(now)
			b.Connected(now)
			steps := rng.Intn(40) + 1
			for st := 0; st < steps; st++ {
				burst := rng.Intn(30)
				if rng.Intn(60) == 0 {
					burst = 1500
				}
				for k := burst; k > 0; k-- {
					n++
					if rng.Intn(2) == 0 {
						msg(a, "a", n)
					} else {
						msg(b, "b", n+500000)
					}
				}
				now = now.Add(time.Duration(rng.Intn(200)) * time.Millisecond)
				fa, fb := a.Poll(now), b.Poll(now)
				cut := false
				if rng.Intn(8) == 0 {
					fa, cut = fa[:rng.Intn(len(fa)+1)], true // cut: a tail of a's frames lost, and the connection
				}
				if rng.Intn(8) == 0 {
					fb, cut = fb[:rng.Intn(len(fb)+1)], true
				}
				gb, errB := feed(now, b, fa)
				ga, errA := feed(now, a, fb)
				if errA != nil || errB != nil {
					t.Fatalf("seed %d conn %d step %d (restarts %d): a %v; b %v (epoch changes a %d b %d, resumes a %d b %d)", seed, conn, st, restarts, errA, errB, a.EpochChanges, b.EpochChanges, a.Resumes, b.Resumes)
				}
				for _, g := range gb {
					if m := cutsIDRe.FindStringSubmatch(g); m != nil && rng.Intn(3) > 0 {
						rcpt(b, m[1])
					}
				}
				for _, g := range ga {
					if m := cutsIDRe.FindStringSubmatch(g); m != nil && rng.Intn(3) > 0 {
						rcpt(a, m[1])
					}
				}
				if cut || len(fa) == 0 && len(fb) == 0 && rng.Intn(3) == 0 {
					break
				}
			}
			a.Disconnected()
			b.Disconnected()
			now = now.Add(time.Second)
		}
		t.Logf("seed %d: epoch changes a %d b %d, resumes a %d b %d, echoed a %d b %d", seed, a.EpochChanges, b.EpochChanges, a.Resumes, b.Resumes, a.enc.Echoed(), b.enc.Echoed())
	}
}
