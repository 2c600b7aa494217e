package dgram

import (
	"bytes"
	"math/rand"
	"testing"
	"time"
)

// simPair runs two ARQs over a simulated link in virtual time: each
// direction serializes at rate, arrives delay later, loses datagrams with
// probability loss and everything sent during [downFrom, downTo).
type simPair struct {
	t                *testing.T
	rate             int64
	delay            time.Duration
	loss             float64
	downFrom, downTo time.Duration
	rng              *rand.Rand
	arq              [2]*ARQ
	next             [2]time.Time // pacer
	inbox            [2][]simDatagram
	got, want        [2][]byte
	wire             [2]int
}

type simDatagram struct {
	at time.Time
	o  Out
}

func newSimPair(t *testing.T, rate int64, delay time.Duration, loss float64, mtu int) *simPair {
	s := &simPair{t: t, rate: rate, delay: delay, loss: loss, rng: rand.New(rand.NewSource(7))}
	for i := range s.arq {
		s.arq[i] = NewARQ(ARQConfig{MTU: mtu, RateBPS: rate, HeaderBytes: 28})
	}
	return s
}

func (s *simPair) tx(n int) time.Duration {
	return time.Duration(float64((n+28)*8) / float64(s.rate) * float64(time.Second))
}

// run advances virtual time from start by d in 1 ms steps; write is called
// each step to offer new data.
func (s *simPair) run(start time.Time, d time.Duration, write func(now time.Time, side int) []byte) time.Time {
	now := start
	for end := start.Add(d); now.Before(end); now = now.Add(time.Millisecond) {
		for i := range 2 {
			if write != nil {
				if p := write(now, i); len(p) > 0 {
					s.arq[i].Write(p)
					s.want[i] = append(s.want[i], p...)
				}
			}
			in := s.inbox[1-i]
			for len(in) > 0 && !in[0].at.After(now) {
				o := in[0].o
				in = in[1:]
				out, err := s.arq[i].Receive(now, o.PN, o.Flags, o.Plain)
				if err != nil {
					s.t.Fatalf("side %d: %v", i, err)
				}
				s.got[1-i] = append(s.got[1-i], out...)
			}
			s.inbox[1-i] = in
			if now.Before(s.next[i]) {
				continue
			}
			o, ok := s.arq[i].Poll(now)
			if !ok {
				continue
			}
			size := len(o.Plain) + Overhead - 2 + o.PNLen
			if size > s.arq[i].cfg.MTU {
				s.t.Fatalf("datagram of %d bytes above the MTU %d", size, s.arq[i].cfg.MTU)
			}
			s.wire[i] += size + 28
			s.next[i] = now.Add(s.tx(size))
			el := now.Sub(start)
			if (el >= s.downFrom && el < s.downTo) || s.rng.Float64() < s.loss {
				continue
			}
			s.inbox[i] = append(s.inbox[i], simDatagram{at: s.next[i].Add(s.delay), o: o})
		}
	}
	return now
}

func (s *simPair) check() {
	for i := range 2 {
		if !bytes.Equal(s.got[i], s.want[i]) {
			s.t.Fatalf("side %d's stream: delivered %d bytes, want %d (equal prefix: %v)", i, len(s.got[i]), len(s.want[i]),
				bytes.HasPrefix(s.want[i], s.got[i]))
		}
	}
}

// traffic offers a chunk every period (random sizes, some larger than the
// MTU) on both sides until stop.
func traffic(rng *rand.Rand, start time.Time, period, stop time.Duration) func(time.Time, int) []byte {
	return func(now time.Time, side int) []byte {
		el := now.Sub(start)
		if el >= stop || el%period != time.Duration(side)*period/2 {
			return nil
		}
		n := 20 + rng.Intn(80)
		if rng.Intn(10) == 0 {
			n = 1500 + rng.Intn(3000)
		}
		p := make([]byte, n)
		rng.Read(p)
		return p
	}
}

func TestARQNoLossNoRetransmission(t *testing.T) {
	s := newSimPair(t, 9600, 50*time.Millisecond, 0, 600)
	start := time.Unix(0, 0)
	now := s.run(start, 2*time.Minute, traffic(rand.New(rand.NewSource(1)), start, 400*time.Millisecond, 90*time.Second))
	s.check()
	for i, a := range s.arq {
		if a.Stats.Retransmits != 0 || a.Stats.Probes != 0 {
			t.Errorf("side %d without loss: %+v", i, a.Stats)
		}
		if a.Stats.AckOnly*4 > a.Stats.DataDatagrams {
			t.Errorf("side %d: %d ack-only datagrams for %d with data: acks do not ride on data", i, a.Stats.AckOnly, a.Stats.DataDatagrams)
		}
		if a.Outstanding() != 0 {
			t.Errorf("side %d: %d fragments unacknowledged at %v", i, a.Outstanding(), now)
		}
	}
}

func TestARQLossAndOutage(t *testing.T) {
	for _, c := range []struct {
		name  string
		rate  int64
		delay time.Duration
	}{{"vhf-9600", 9600, 50 * time.Millisecond}, {"iridium-2400", 2400, 750 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			s := newSimPair(t, c.rate, c.delay, 0.05, 1200)
			s.downFrom, s.downTo = 40*time.Second, 100*time.Second
			start := time.Unix(0, 0)
			period := 500 * time.Millisecond
			if c.rate < 9600 {
				period = 2 * time.Second
			}
			s.run(start, 5*time.Minute, traffic(rand.New(rand.NewSource(2)), start, period, 2*time.Minute))
			s.check()
			for i, a := range s.arq {
				t.Logf("side %d: %+v srtt %v wire %d B for %d B", i, a.Stats, a.SRTT(), s.wire[i], len(s.want[i]))
				if a.Outstanding() != 0 || a.Stats.Retransmits == 0 {
					t.Errorf("side %d: %d outstanding, stats %+v", i, a.Outstanding(), a.Stats)
				}
				// Probes during the 60 s outage are capped at MaxProbe: a few, not hundreds.
				if a.Stats.Probes > 10 {
					t.Errorf("side %d: %d probes", i, a.Stats.Probes)
				}
			}
		})
	}
}

// TestARQRecoversAfterOutage checks that data written during an outage is
// delivered soon after it ends: within the probe interval plus a few round
// trips, not after a backed-off timer of minutes.
func TestARQRecoversAfterOutage(t *testing.T) {
	s := newSimPair(t, 9600, 50*time.Millisecond, 0, 1200)
	start := time.Unix(0, 0)
	s.downFrom, s.downTo = 10*time.Second, 10*time.Minute+10*time.Second
	wrote := false
	s.run(start, 10*time.Minute+10*time.Second, func(now time.Time, side int) []byte {
		if side == 0 && !wrote && now.Sub(start) >= 5*time.Minute {
			wrote = true
			return []byte("queued during the outage")
		}
		return nil
	})
	if len(s.got[0]) != 0 {
		t.Fatal("delivered during the outage")
	}
	s.downFrom, s.downTo = 0, 0
	s.run(start.Add(10*time.Minute+10*time.Second), 11*time.Second, nil)
	s.check()
}

// FuzzARQReceive feeds an ARQ authentic-looking datagrams with any flags
// and bytes (a buggy or hostile peer holding the key): it must not panic,
// and what it delivers is never more than the fragments it was given.
func FuzzARQReceive(f *testing.F) {
	f.Add(byte(FlagData), []byte{0, 'x'}, uint64(0))
	f.Add(byte(FlagAck|FlagMask|FlagData|FlagSeq2), []byte{0, 0, 0x85, 0x01, 0, 1, 'y'}, uint64(70000))
	f.Add(byte(FlagAck|FlagAckNow), []byte{0xff, 0xff}, uint64(3))
	f.Fuzz(func(t *testing.T, flags byte, p []byte, pn uint64) {
		a := NewARQ(ARQConfig{RateBPS: 9600, HeaderBytes: 28})
		a.Write([]byte("some data to have something in flight"))
		now := time.Unix(0, 0)
		if _, ok := a.Poll(now); !ok {
			t.Fatal("nothing to send")
		}
		got, err := a.Receive(now, pn, flags&flagsARQ, p)
		if err == nil && len(got) > len(p) {
			t.Fatalf("delivered %d bytes from a %d-byte datagram", len(got), len(p))
		}
		a.Poll(now.Add(time.Minute))
		a.Next()
	})
}

// TestARQJoin: writes that come while the last fragment waits for the
// pacer join it, up to the fragment's room; the peer gets the stream whole.
func TestARQJoin(t *testing.T) {
	a := NewARQ(ARQConfig{MTU: 200, RateBPS: 9600, HeaderBytes: 28})
	b := NewARQ(ARQConfig{MTU: 200, RateBPS: 9600, HeaderBytes: 28})
	now := time.Unix(0, 0)
	var want []byte
	for _, n := range []int{30, 40, 50} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		a.Write(p)
		want = append(want, p...)
	}
	if a.Stats.Fragments != 1 || a.Stats.Joined != 2 || a.Unsent() != 120 {
		t.Fatalf("3 small writes: %d fragments, %d joined, %d unsent; want 1, 2, 120", a.Stats.Fragments, a.Stats.Joined, a.Unsent())
	}
	if a.CanJoin(a.MaxFragment()) {
		t.Fatalf("a write of %d bytes fits in a fragment holding 120", a.MaxFragment())
	}
	big := bytes.Repeat([]byte{9}, a.MaxFragment())
	a.Write(big) // no room: a fragment of its own
	want = append(want, big...)
	var got []byte
	for {
		o, ok := a.Poll(now)
		if !ok {
			break
		}
		d, err := b.Receive(now, o.PN, o.Flags, o.Plain)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d...)
	}
	if !bytes.Equal(got, want) || a.Stats.DataDatagrams != 2 {
		t.Fatalf("delivered %d of %d bytes in %d datagrams, want all in 2", len(got), len(want), a.Stats.DataDatagrams)
	}
	if a.CanJoin(1) {
		t.Fatal("a write joins a fragment already sent")
	}
}

// TestARQLinkUp: deep in an outage's backoff the probes carry no data;
// when the carrier reports the link back, the next datagram goes at once
// and carries the oldest unacknowledged fragment, even one never sent.
func TestARQLinkUp(t *testing.T) {
	a := NewARQ(ARQConfig{RateBPS: 2400, HeaderBytes: 28, MaxProbe: 30 * time.Second})
	now := time.Unix(0, 0)
	a.Write([]byte("first"))
	if _, ok := a.Poll(now); !ok {
		t.Fatal("nothing sent")
	}
	// Ten minutes without an answer.
	for end := now.Add(10 * time.Minute); now.Before(end); now = now.Add(100 * time.Millisecond) {
		a.Poll(now)
	}
	a.Write([]byte("queued"))
	if a.Backoff() <= pingAfter {
		t.Fatalf("backoff %d after 10 minutes", a.Backoff())
	}
	if n := a.Next(); !n.After(now) {
		t.Fatalf("next probe at %v, now %v: want later", n, now)
	}
	a.LinkUp()
	if n := a.Next(); n.After(now) {
		t.Fatalf("after LinkUp the next datagram waits until %v", n.Sub(now))
	}
	o, ok := a.Poll(now)
	if !ok || o.Flags&FlagData == 0 || o.Flags&FlagAckNow == 0 {
		t.Fatalf("after LinkUp: %+v %v, want the lost fragment with R", o, ok)
	}
	if !bytes.HasSuffix(o.Plain, []byte("first")) {
		t.Fatalf("probe carries %q, want the oldest fragment", o.Plain)
	}
	// Nothing lost but a fragment never sent: it goes.
	c := NewARQ(ARQConfig{RateBPS: 2400, HeaderBytes: 28})
	c.Write([]byte("x"))
	c.Poll(now)
	c.Receive(now, 0, FlagAck, []byte{0, 0}) // acked: nothing lost
	c.Write([]byte("y"))
	c.backoff, c.probe = pingAfter+3, false // as after an outage with y queued
	c.LinkUp()
	if o, ok := c.Poll(now); !ok || !bytes.HasSuffix(o.Plain, []byte("y")) {
		t.Fatalf("after LinkUp with only unsent data: %+v %v", o, ok)
	}
}
