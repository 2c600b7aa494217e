package emu

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// OutageMode says what an outage does to stream connections.
type OutageMode int

const (
	// Reset closes every stream connection of the link with ErrLinkDown when
	// an outage starts (as a radio drop kills a TCP session after its
	// timeouts) and refuses new ones until the outage ends.
	Reset OutageMode = iota
	// Stall holds stream data until the outage ends.
	Stall
)

func (m OutageMode) String() string {
	if m == Stall {
		return "stall"
	}
	return "reset"
}

// ErrLinkDown is the cause of errors on connections reset by an outage and
// of Dial failing during one.
var ErrLinkDown = errors.New("emu: link down")

// errLinkClosed is the cause of errors on connections of a closed Link.
var errLinkClosed = errors.New("emu: link closed")

// StreamWindow is how many bytes a stream connection accepts per direction
// before Write blocks: bytes written and not yet read by the peer.
const StreamWindow = 64 << 10

// DirStats counts one direction of a Link. Units are stream segments or
// datagrams.
type DirStats struct {
	OfferedBytes, OfferedUnits     int64 // handed to the link by writers
	DeliveredBytes, DeliveredUnits int64 // handed to the receiving end
	// RetransmittedBytes and RetransmittedUnits count stream segments lost
	// on the air and sent again (each retransmission once).
	RetransmittedBytes, RetransmittedUnits int64
	// LostBytes and LostUnits count datagrams lost on the air or during an
	// outage.
	LostBytes, LostUnits int64
	// DroppedBytes and DroppedUnits count datagrams dropped before the air:
	// larger than the MTU, the transmit queue full, or the receiver's queue
	// full.
	DroppedBytes, DroppedUnits int64
	QueuedBytes                int64 // waiting for the serializer now
	// AirBytes is how many bytes occupied the serializer: every unit
	// (retransmissions and datagrams lost on the air included) and, with
	// SetHeaders, the modeled IP headers and pure ACKs.
	AirBytes int64
	InFlight int // segments or datagrams scheduled, not yet delivered
}

// Stats is a snapshot of a Link's counters.
type Stats struct {
	AB, BA  DirStats // A→B and B→A
	Outages int      // outages started so far
	Down    bool     // an outage is in progress
}

// Link is one bidirectional emulated link. Direction 0 carries A→B (the
// a-end of a Pipe, the dialer, the first wrapped PacketConn), direction 1
// carries B→A. Each direction has its own serializer, shared by all the
// connections of the link, and one goroutine that delivers what arrives.
// Close stops everything.
type Link struct {
	p    Profile
	mtu  int
	rto  time.Duration
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu        sync.Mutex // guards the fields below and the state of every conn of the link
	dirs      [2]direction
	mode      OutageMode
	downUntil time.Time // an outage is in progress while now is before it
	outages   int
	closed    bool
	pipes     map[*pipe]struct{} // open stream pipes, reset by outages
	pends     map[*packetEnd]struct{}
	ln        *listener
	seq       uint64        // tie-breaker keeping delivery order for equal times
	pktQueue  int           // max bytes waiting for the serializer before datagrams drop
	wraps     int           // PacketConns wrapped so far
	headers   bool          // SetHeaders: IP headers and pure ACKs occupy the serializer
	stateCh   chan struct{} // closed and replaced when the link goes down or up
}

// direction is one direction's serializer and delivery queue.
type direction struct {
	rng       *rand.Rand
	busyUntil time.Time     // the serializer is free from then on
	q         itemHeap      // scheduled deliveries
	wake      chan struct{} // capacity 1: the queue head or link state changed
	bad       bool          // Gilbert-Elliott state: in a loss burst
	st        DirStats
}

// item is one scheduled delivery.
type item struct {
	at      time.Time // arrival at the far end
	seq     uint64
	size    int
	packet  bool   // datagram: lost if it arrives during an outage
	deliver func() // called without Link.mu held, in arrival order
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(*item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

// NewLink starts an emulated link with profile p. Losses and random outages
// are drawn from generators seeded with seed, so a run is repeatable given
// the same sequence of operations. The caller must Close the link.
func NewLink(p Profile, seed int64) *Link {
	l := &Link{
		p:       p,
		mtu:     p.mtu(),
		rto:     max(200*time.Millisecond, 4*p.Delay),
		stop:    make(chan struct{}),
		pipes:   make(map[*pipe]struct{}),
		pends:   make(map[*packetEnd]struct{}),
		stateCh: make(chan struct{}),
	}
	l.pktQueue = max(4*l.mtu, int(p.RateBPS/8))
	for i := range l.dirs {
		l.dirs[i].rng = rand.New(rand.NewPCG(uint64(seed), uint64(i)))
		l.dirs[i].wake = make(chan struct{}, 1)
	}
	l.wg.Add(2)
	go l.run(&l.dirs[0])
	go l.run(&l.dirs[1])
	if p.OutageEvery[1] > 0 && p.OutageLen[1] > 0 {
		l.wg.Add(1)
		go l.outageLoop(rand.New(rand.NewPCG(uint64(seed), 2)))
	}
	return l
}

// Profile returns the link's profile.
func (l *Link) Profile() Profile { return l.p }

// SetOutageMode chooses what outages do to stream connections (default
// Reset).
func (l *Link) SetOutageMode(m OutageMode) {
	l.mu.Lock()
	l.mode = m
	l.mu.Unlock()
	l.wakeAll()
}

// SetPacketQueue sets how many bytes of datagrams may wait for the
// serializer in each direction before further datagrams are dropped. The
// default is the larger of 4 MTUs and one second at the link rate.
func (l *Link) SetPacketQueue(bytes int) {
	l.mu.Lock()
	l.pktQueue = bytes
	l.mu.Unlock()
}

// Header sizes modeled by SetHeaders.
const (
	TCPHeaderBytes = 52 // IPv4 20 + TCP 20 + timestamp option 12, per segment and per pure ACK
	SYNBytes       = 60 // SYN and SYN/ACK carry more options
	UDPHeaderBytes = 28 // IPv4 20 + UDP 8, per datagram
)

// SetHeaders makes IP headers occupy the serializer as they would on a
// real link (default off: only the units' bytes do). With it, each stream
// segment costs TCPHeaderBytes more, the receiving end of a stream returns
// one pure ACK (TCPHeaderBytes on the other direction) per two segments it
// received (delayed ACK, never piggybacked: the same model as package
// link's wire estimate), a Dial costs SYN, SYN/ACK and ACK, and each
// datagram costs UDPHeaderBytes more. Stats.AirBytes counts them; the
// stream MTU and the datagram size limit still apply to the payload.
func (l *Link) SetHeaders(on bool) {
	l.mu.Lock()
	l.headers = on
	l.mu.Unlock()
}

// occupyLocked puts n bytes that no one receives (a header-only segment)
// on direction i's serializer now.
func (l *Link) occupyLocked(i int, n int) {
	d := &l.dirs[i]
	start := l.startLocked(d, time.Now())
	d.busyUntil = start.Add(l.serTime(n))
	d.st.AirBytes += int64(n)
}

// Down starts an outage lasting d from now (replacing any outage in
// progress). In Reset mode it resets every stream connection at once.
func (l *Link) Down(d time.Duration) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	now := time.Now()
	if !now.Before(l.downUntil) {
		l.outages++
	}
	l.downUntil = now.Add(d)
	if l.mode == Reset {
		l.resetPipesLocked(ErrLinkDown)
	}
	l.stateChangedLocked()
	l.mu.Unlock()
	l.wakeAll()
	time.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed && !l.downUntil.IsZero() && !time.Now().Before(l.downUntil) {
			l.downUntil = time.Time{} // the outage is over: tell LinkState's watchers
			l.stateChangedLocked()
		}
	})
}

// Up ends an outage in progress now.
func (l *Link) Up() {
	l.mu.Lock()
	l.downUntil = time.Time{}
	l.stateChangedLocked()
	l.mu.Unlock()
	l.wakeAll()
}

// LinkState reports whether the link is up (no outage in progress) and
// returns a channel closed at its next change: an outage starting or
// ending, or Close. It is what a modem's carrier detect or a STANAG 5066
// SIS link-up tells its user; the datagram ends of the link (PacketPipe)
// offer it as link.LinkStater.
func (l *Link) LinkState() (up bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && !time.Now().Before(l.downUntil), l.stateCh
}

// IsDown reports whether an outage is in progress.
func (l *Link) IsDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.downUntil)
}

// Stats returns a snapshot of the link's counters.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	s := Stats{AB: l.dirs[0].st, BA: l.dirs[1].st, Outages: l.outages, Down: now.Before(l.downUntil)}
	for i, ds := range []*DirStats{&s.AB, &s.BA} {
		d := &l.dirs[i]
		ds.InFlight = d.q.Len()
		if l.p.RateBPS > 0 && d.busyUntil.After(now) {
			ds.QueuedBytes = int64(d.busyUntil.Sub(now)) * l.p.RateBPS / 8 / int64(time.Second)
		}
	}
	return s
}

// Close resets every connection of the link, stops its goroutines and
// waits for them. It is safe to call more than once.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.resetPipesLocked(errLinkClosed)
	for pe := range l.pends {
		pe.closeLocked()
	}
	ln := l.ln
	l.stateChangedLocked()
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	close(l.stop)
	l.wg.Wait()
	return nil
}

func (l *Link) wakeAll() {
	for i := range l.dirs {
		select {
		case l.dirs[i].wake <- struct{}{}:
		default:
		}
	}
}

func (l *Link) stateChangedLocked() {
	close(l.stateCh)
	l.stateCh = make(chan struct{})
}

// serTime is how long n bytes occupy the serializer.
func (l *Link) serTime(n int) time.Duration {
	if l.p.RateBPS <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / l.p.RateBPS)
}

// lose draws whether the next unit in direction d is lost on the air.
func (l *Link) lose(d *direction) bool {
	p := l.p.Loss
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	case l.p.BurstLen <= 1:
		return d.rng.Float64() < p
	}
	// Gilbert-Elliott with a lossless good state and a lossy bad state:
	// leave bad with probability r (mean burst 1/r), enter it with
	// probability p*r/(1-p) so that the stationary loss rate is p.
	r := 1 / float64(l.p.BurstLen)
	if d.bad {
		if d.rng.Float64() < r {
			d.bad = false
		}
	} else if d.rng.Float64() < p*r/(1-p) {
		d.bad = true
	}
	return d.bad
}

// pushLocked schedules it in direction d.
func (l *Link) pushLocked(d *direction, it *item) {
	l.seq++
	it.seq = l.seq
	heap.Push(&d.q, it)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// startLocked is when a unit offered now can start serializing.
func (l *Link) startLocked(d *direction, now time.Time) time.Time {
	start := now
	if d.busyUntil.After(start) {
		start = d.busyUntil
	}
	if l.mode == Stall && l.downUntil.After(start) {
		start = l.downUntil
	}
	return start
}

// sendPacketLocked offers one datagram to direction i; deliver is called at
// its arrival unless it is lost or dropped.
func (l *Link) sendPacketLocked(i int, now time.Time, size int, deliver func()) {
	d := &l.dirs[i]
	d.st.OfferedBytes += int64(size)
	d.st.OfferedUnits++
	drop := func(lost bool) {
		if lost {
			d.st.LostBytes += int64(size)
			d.st.LostUnits++
		} else {
			d.st.DroppedBytes += int64(size)
			d.st.DroppedUnits++
		}
	}
	if size > l.mtu {
		drop(false)
		return
	}
	if now.Before(l.downUntil) {
		drop(true)
		return
	}
	start := now
	if d.busyUntil.After(now) {
		start = d.busyUntil
		if l.p.RateBPS > 0 && int64(start.Sub(now))*l.p.RateBPS/8/int64(time.Second)+int64(size) > int64(l.pktQueue) {
			drop(false)
			return
		}
	}
	air := size
	if l.headers {
		air += UDPHeaderBytes
	}
	end := start.Add(l.serTime(air))
	d.busyUntil = end
	d.st.AirBytes += int64(air)
	if l.lose(d) {
		drop(true)
		return
	}
	l.pushLocked(d, &item{at: end.Add(l.p.Delay), size: size, packet: true, deliver: deliver})
}

// run delivers direction d's items at their arrival times until Close.
func (l *Link) run(d *direction) {
	defer l.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due []func()
	for {
		l.mu.Lock()
		now := time.Now()
		wait := time.Duration(-1)
		if l.mode == Stall && now.Before(l.downUntil) && d.q.Len() > 0 {
			wait = l.downUntil.Sub(now)
		} else {
			for d.q.Len() > 0 && !d.q[0].at.After(now) {
				it := heap.Pop(&d.q).(*item)
				if it.packet && now.Before(l.downUntil) {
					d.st.LostBytes += int64(it.size)
					d.st.LostUnits++
					continue
				}
				if it.size > 0 {
					d.st.DeliveredBytes += int64(it.size)
					d.st.DeliveredUnits++
				}
				due = append(due, it.deliver)
			}
			if d.q.Len() > 0 {
				wait = d.q[0].at.Sub(now)
			}
		}
		l.mu.Unlock()
		for _, f := range due {
			f()
		}
		clear(due)
		due = due[:0]
		t.Stop()
		if wait >= 0 {
			t.Reset(wait)
		}
		select {
		case <-l.stop:
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// outageLoop starts random outages per the profile until Close.
func (l *Link) outageLoop(rng *rand.Rand) {
	defer l.wg.Done()
	pick := func(r [2]time.Duration) time.Duration {
		if r[1] <= r[0] {
			return r[0]
		}
		return r[0] + time.Duration(rng.Int64N(int64(r[1]-r[0])+1))
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	sleep := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-l.stop:
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if !sleep(pick(l.p.OutageEvery)) {
			return
		}
		n := pick(l.p.OutageLen)
		l.Down(n)
		if !sleep(n) {
			return
		}
	}
}
