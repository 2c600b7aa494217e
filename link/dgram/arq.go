package dgram

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ARQConfig sets the reliability layer's sizes and timers.
type ARQConfig struct {
	// MTU is the largest datagram the carrier takes (its payload: for UDP,
	// without the 28 bytes of IPv4 and UDP headers). Default 1200.
	MTU int
	// RateBPS is the link rate the datagrams are paced at (0: unpaced); it
	// sizes the timers: a datagram's serialization time is part of its
	// retransmission timeout, and the ack delay is one MTU's serialization.
	RateBPS int64
	// HeaderBytes is the carrier's per-datagram header, for serialization
	// times (UDP over IPv4: 28).
	HeaderBytes int
	// AckDelay is how long an ack waits for data to ride on before it goes
	// alone (default: DefaultAckDelay).
	AckDelay time.Duration
	// InitialRTT stands for the round trip before the first sample (default 1s).
	InitialRTT time.Duration
	// MaxProbe caps the interval of the probes sent while nothing is
	// acknowledged (an outage), so that the first probe after the link
	// returns goes within MaxProbe (default 10s; never below a round trip
	// and four deviations).
	MaxProbe time.Duration
}

func (c *ARQConfig) populate() {
	if c.MTU <= 0 {
		c.MTU = 1200
	}
	c.MTU = max(c.MTU, minMTU)
	if c.InitialRTT <= 0 {
		c.InitialRTT = time.Second
	}
	if c.MaxProbe <= 0 {
		c.MaxProbe = 10 * time.Second
	}
	if c.AckDelay <= 0 {
		c.AckDelay = DefaultAckDelay(c.MTU, c.RateBPS, c.HeaderBytes)
	}
}

// DefaultAckDelay is the ack delay for a link: the serialization time of
// one datagram of mtu bytes (and hdr bytes of carrier header) at rate
// bit/s, within 500ms..2s: 1.0 s on vhf-9600, 2 s on iridium-2400, 500 ms
// on geo-1m. An ack that waits that long adds at most one large datagram's
// time to the sender's view, and on slow links it nearly always finds a
// datagram to ride on. The floor is for fast links with long delays: at
// 100 ms, geo-1m's acks mostly went alone (74 B of fixed cost per frame,
// raw ÷ wire 3.63x over the demo's 5 minutes); at 500 ms they ride on the
// other direction's frames (50 B, 4.54x), with the same latency.
func DefaultAckDelay(mtu int, rate int64, hdr int) time.Duration {
	c := ARQConfig{MTU: max(mtu, minMTU), RateBPS: rate, HeaderBytes: hdr}
	return min(max(c.txTime(c.MTU), 500*time.Millisecond), 2*time.Second)
}

// minMTU leaves room for the headers and some data.
const minMTU = 64

// txTime is the serialization time of a datagram of n bytes.
func (c *ARQConfig) txTime(n int) time.Duration {
	if c.RateBPS <= 0 {
		return 0
	}
	return time.Duration(float64((n+c.HeaderBytes)*8) / float64(c.RateBPS) * float64(time.Second))
}

// Limits of the truncated numbers: the sender keeps the distance between
// what it sends and what the peer acknowledged below these, so that the
// receiver decodes 2-byte numbers unambiguously; 1 byte serves below short.
const (
	window       = 1 << 14
	short        = 1 << 6
	ackMaskBits  = 32 // an ack reports the datagrams up to 32 below its largest
	ackEvery     = 16 // ack at once after this many unacknowledged data datagrams
	ackSize      = 2 + 5
	dataHdrSize  = 2
	pingAfter    = 2 // probes after this many timeouts carry no data
	rttGranulity = time.Millisecond
)

// ErrMalformed is returned by Receive for an authentic datagram it cannot
// parse (a peer bug or version mismatch); the datagram is dropped.
var ErrMalformed = errors.New("dgram: malformed datagram")

type frag struct {
	seq   uint64
	data  []byte
	sent  bool // sent at least once
	acked bool
	lost  bool // waiting for retransmission
}

type inFlight struct {
	pn   uint64
	f    *frag // nil: a probe without data
	at   time.Time
	size int
}

// ARQStats count a reliability layer's work.
type ARQStats struct {
	Datagrams     uint64 // sent, of every kind
	DataDatagrams uint64 // carrying a fragment (first sends and retransmissions)
	AckOnly       uint64 // carrying only an ack
	Probes        uint64 // probes without data
	Retransmits   uint64 // fragments sent again
	Fragments     uint64 // fragments made by Write
	Joined        uint64 // writes that joined a fragment waiting for the pacer
	Duplicates    uint64 // fragments received again
	Malformed     uint64
}

// Out is one datagram to seal and send.
type Out struct {
	PN    uint64
	PNLen int  // 1 or 2
	Flags byte // FlagAck, FlagMask, FlagData, FlagSeq2, FlagAckNow
	Plain []byte
}

// ARQ is the reliability layer of one datagram session: it cuts the byte
// stream written to it into fragments that fit the MTU, numbers datagrams,
// acknowledges received ones (piggy-backed on data, alone only after
// AckDelay), retransmits what the peer's acks show missing or what its
// timer says is lost, and delivers the peer's stream in order, exactly
// once. It knows nothing of the carrier (UDP or another) and is a pure
// state machine: time is passed in, datagrams go in and out as bytes.
type ARQ struct {
	cfg     ARQConfig
	maxData int

	// send side
	nextPN       uint64
	frags        []*frag // unacknowledged fragments from seq base up
	base         uint64
	nextSeq      uint64
	unsent       int // bytes of fragments never sent
	flight       []inFlight
	largestAcked uint64
	anyAcked     bool
	maxSeqSent   uint64
	anySent      bool
	srtt, rttvar time.Duration
	minRTT       time.Duration
	haveRTT      bool
	backoff      int
	probe        bool // a probe may go now (backoff > 0)
	probeData    bool // ...and carry a fragment whatever the backoff (LinkUp)

	// receive side
	haveRecv  bool
	largest   uint64 // largest packet number received
	recvMask  uint64 // bit i: largest-1-i received
	expect    uint64 // next in-order fragment
	ooo       map[uint64][]byte
	ackOwed   bool
	ackDue    time.Time
	ackNow    bool
	owedCount int

	Stats ARQStats
}

// NewARQ returns the reliability layer for a new session.
func NewARQ(cfg ARQConfig) *ARQ {
	cfg.populate()
	return &ARQ{cfg: cfg, maxData: cfg.MTU - Overhead - ackSize - dataHdrSize, ooo: map[uint64][]byte{}}
}

// AckDelay returns the configured (or derived) ack delay.
func (a *ARQ) AckDelay() time.Duration { return a.cfg.AckDelay }

// MaxFragment is the most stream bytes one datagram carries.
func (a *ARQ) MaxFragment() int { return a.maxData }

// Write appends p to the outgoing stream, as fragments of at most
// MaxFragment bytes. Nothing waits for more to come: a fragment goes as
// soon as the pacer lets it; a write that CanJoin the last fragment, still
// waiting for the pacer, joins it instead (it would have waited as long).
func (a *ARQ) Write(p []byte) {
	if a.CanJoin(len(p)) {
		f := a.frags[len(a.frags)-1]
		f.data = append(f.data, p...)
		a.unsent += len(p)
		a.Stats.Joined++
		return
	}
	for len(p) > 0 {
		n := min(len(p), a.maxData)
		a.frags = append(a.frags, &frag{seq: a.nextSeq, data: append([]byte(nil), p[:n]...)})
		a.nextSeq++
		a.unsent += n
		a.Stats.Fragments++
		p = p[n:]
	}
}

// CanJoin reports whether a write of n bytes would join the last fragment
// instead of making new ones: that fragment has not been sent yet and has
// room for them.
func (a *ARQ) CanJoin(n int) bool {
	if n <= 0 || len(a.frags) == 0 {
		return false
	}
	f := a.frags[len(a.frags)-1]
	return !f.sent && len(f.data)+n <= a.maxData
}

// Unsent returns the bytes written and not yet sent once.
func (a *ARQ) Unsent() int { return a.unsent }

// Outstanding returns the fragments not yet acknowledged.
func (a *ARQ) Outstanding() int { return len(a.frags) }

// SRTT returns the smoothed round-trip time (0: no sample yet).
func (a *ARQ) SRTT() time.Duration {
	if !a.haveRTT {
		return 0
	}
	return a.srtt
}

// MinRTT returns the smallest round trip sampled (0: none yet): the path's
// delay and a datagram's serialization, without the peer's ack delay that
// most samples include.
func (a *ARQ) MinRTT() time.Duration {
	if !a.haveRTT {
		return 0
	}
	return a.minRTT
}

// Backoff returns how many retransmission timeouts have passed without an
// ack (0: the peer is answering).
func (a *ARQ) Backoff() int { return a.backoff }

// LargestAcked returns the largest packet number the peer acknowledged.
func (a *ARQ) LargestAcked() (uint64, bool) { return a.largestAcked, a.anyAcked }

// rto is the retransmission timeout of a datagram of size bytes: the
// smoothed RTT and four deviations (RFC 6298) and the datagram's own
// serialization time, plus the peer's ack delay (probes, sent once a
// timeout has passed, ask for an ack at once instead), doubled per timeout
// without an ack and capped at MaxProbe (never below the undoubled value).
func (a *ARQ) rto(size int) time.Duration {
	srtt, rttvar := a.cfg.InitialRTT, a.cfg.InitialRTT/2
	if a.haveRTT {
		srtt, rttvar = a.srtt, a.rttvar
	}
	base := srtt + max(4*rttvar, rttGranulity) + a.cfg.txTime(size)
	if a.backoff == 0 {
		return base + a.cfg.AckDelay
	}
	d := base << min(a.backoff, 16)
	return min(d, max(base, a.cfg.MaxProbe))
}

func (a *ARQ) rtoAt() time.Time {
	if len(a.flight) == 0 {
		return time.Time{}
	}
	f := a.flight[len(a.flight)-1]
	if a.backoff == 0 {
		f = a.flight[0]
	}
	return f.at.Add(a.rto(f.size))
}

// now is a time in the past, for Next: something is to be sent at once.
var now0 = time.Unix(0, 1)

// Next returns when Poll has something to do (zero: nothing until a Write
// or Receive). A time not after now means at once.
func (a *ARQ) Next() time.Time {
	if a.ackNow || a.sendable() != nil {
		return now0
	}
	var next time.Time
	if a.ackOwed {
		next = a.ackDue
	}
	if t := a.rtoAt(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
		next = t
	}
	return next
}

// sendable returns the fragment Poll would send now (nil: none).
func (a *ARQ) sendable() *frag {
	if a.backoff > 0 {
		if !a.probe || (a.backoff > pingAfter && !a.probeData) {
			return nil
		}
		for _, f := range a.frags {
			if f.lost && !f.acked {
				return f
			}
		}
		if a.probeData {
			for _, f := range a.frags {
				if !f.sent {
					return f
				}
			}
		}
		return nil
	}
	for _, f := range a.frags {
		if f.lost && !f.acked {
			return f
		}
	}
	for _, f := range a.frags {
		if !f.sent {
			if f.seq-a.base >= window || (a.anyAcked && a.nextPN-a.largestAcked >= window) {
				return nil
			}
			return f
		}
	}
	return nil
}

// Poll returns the next datagram to send at now, if any: a lost fragment
// again, a new fragment, a probe, or an ack that has waited AckDelay.
// Every datagram with data carries an ack when one is owed.
func (a *ARQ) Poll(now time.Time) (Out, bool) {
	if t := a.rtoAt(); !t.IsZero() && !now.Before(t) {
		// Timeout: everything in flight is presumed lost; until an ack
		// comes, one probe goes per timeout.
		for _, e := range a.flight {
			if e.f != nil && !e.f.acked {
				e.f.lost = true
			}
		}
		a.flight = a.flight[:0]
		a.backoff++
		a.probe = true
	}
	f := a.sendable()
	ping := f == nil && a.backoff > 0 && a.probe
	withAck := a.haveRecv && (a.ackOwed || a.ackNow)
	if f == nil && !ping && !(withAck && (a.ackNow || !now.Before(a.ackDue))) {
		return Out{}, false
	}
	o := Out{PN: a.nextPN, PNLen: 2}
	a.nextPN++
	if a.anyAcked && o.PN-a.largestAcked < short || !a.anyAcked && o.PN < short {
		o.PNLen = 1
	}
	if a.anyAcked && o.PN-a.largestAcked >= window/2 {
		o.Flags |= FlagAckNow // refresh our view of what the peer has
	}
	var p []byte
	if withAck {
		o.Flags |= FlagAck
		p = binary.BigEndian.AppendUint16(p, uint16(a.largest))
		if m := a.missing(); m != 0 {
			o.Flags |= FlagMask
			p = binary.AppendUvarint(p, m)
		}
		a.ackOwed, a.ackNow, a.owedCount = false, false, 0
	}
	size := 0
	switch {
	case f != nil:
		o.Flags |= FlagData
		if a.backoff > 0 {
			o.Flags |= FlagAckNow
			a.probe, a.probeData = false, false
		}
		hi := max(a.maxSeqSent, f.seq)
		if !a.anySent {
			hi = f.seq
		}
		if hi+1-a.base < short {
			p = append(p, byte(f.seq))
		} else {
			o.Flags |= FlagSeq2
			p = binary.BigEndian.AppendUint16(p, uint16(f.seq))
		}
		p = append(p, f.data...)
		if f.sent {
			a.Stats.Retransmits++
		} else {
			a.unsent -= len(f.data)
		}
		f.sent, f.lost = true, false
		if !a.anySent || f.seq > a.maxSeqSent {
			a.maxSeqSent, a.anySent = f.seq, true
		}
		a.Stats.DataDatagrams++
	case ping:
		o.Flags |= FlagAckNow
		a.probe, a.probeData = false, false
		a.Stats.Probes++
	default:
		a.Stats.AckOnly++
	}
	o.Plain = p
	size = len(p) + Overhead
	if f != nil || ping {
		a.flight = append(a.flight, inFlight{pn: o.PN, f: f, at: now, size: size})
	}
	a.Stats.Datagrams++
	return o, true
}

// missing returns the ack's mask: bit i set when datagram largest-1-i was
// not received (only the ackMaskBits below largest are reported).
func (a *ARQ) missing() uint64 {
	m := ^a.recvMask & (1<<ackMaskBits - 1)
	if a.largest < ackMaskBits {
		m &= 1<<a.largest - 1 // there are no datagrams below 0
	}
	return m
}

// LinkUp tells the ARQ that the carrier reports its link back (a modem's
// carrier detect, a STANAG 5066 link-up): if it is probing an outage, the
// next probe goes at once and carries the oldest fragment not yet
// acknowledged, lost or never sent, so that the first queued data arrives
// one way after the link returns (a probe without data when there is none).
func (a *ARQ) LinkUp() {
	if a.backoff > 0 {
		a.probe, a.probeData = true, true
	}
}

// Receive handles an authentic datagram from the peer and returns the
// stream bytes it completes, in order.
func (a *ARQ) Receive(now time.Time, pn uint64, flags byte, p []byte) ([]byte, error) {
	if a.backoff > 0 {
		a.probe = true // the link carries again: probe at once
	}
	if a.notePN(pn) && flags&FlagData != 0 {
		a.ackNow = true // datagrams missing: tell the sender at once
	}
	if flags&FlagAck != 0 {
		if len(p) < 2 {
			return nil, a.malformed("short ack")
		}
		low := uint64(binary.BigEndian.Uint16(p))
		p = p[2:]
		var m uint64
		if flags&FlagMask != 0 {
			var n int
			if m, n = binary.Uvarint(p); n <= 0 || m == 0 {
				return nil, a.malformed("bad ack mask")
			}
			p = p[n:]
		}
		a.onAck(now, low, m)
	}
	if flags&(FlagData|FlagAckNow) != 0 {
		if !a.ackOwed {
			a.ackOwed, a.ackDue = true, now.Add(a.cfg.AckDelay)
		}
		a.owedCount++
		if flags&FlagAckNow != 0 || a.owedCount >= ackEvery {
			a.ackNow = true
		}
	}
	if flags&FlagData == 0 {
		if len(p) != 0 {
			return nil, a.malformed("trailing bytes")
		}
		return nil, nil
	}
	n := 1
	if flags&FlagSeq2 != 0 {
		n = 2
	}
	if len(p) < n {
		return nil, a.malformed("short fragment")
	}
	var trunc uint64
	if n == 2 {
		trunc = uint64(binary.BigEndian.Uint16(p))
	} else {
		trunc = uint64(p[0])
	}
	seq := DecodeTruncated(a.expect, trunc, 8*n)
	data := p[n:]
	switch {
	case seq < a.expect || a.ooo[seq] != nil:
		a.Stats.Duplicates++
		a.ackNow = true // our ack was probably lost
		return nil, nil
	case seq > a.expect:
		if seq-a.expect < window {
			a.ooo[seq] = append([]byte(nil), data...)
		}
		a.ackNow = true // a gap: tell the sender at once
		return nil, nil
	}
	out := append([]byte(nil), data...)
	a.expect++
	for {
		d, ok := a.ooo[a.expect]
		if !ok {
			break
		}
		delete(a.ooo, a.expect)
		out = append(out, d...)
		a.expect++
	}
	return out, nil
}

func (a *ARQ) malformed(what string) error {
	a.Stats.Malformed++
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}

// notePN records a received packet number and reports whether it skipped
// some.
func (a *ARQ) notePN(pn uint64) (gap bool) {
	switch {
	case !a.haveRecv:
		a.largest, a.recvMask, a.haveRecv = pn, 0, true
	case pn > a.largest:
		d := pn - a.largest
		gap = d > 1
		if d >= 64 {
			a.recvMask = 0
		} else {
			a.recvMask = a.recvMask<<d | 1<<(d-1)
		}
		a.largest = pn
	case pn < a.largest && a.largest-pn <= 64:
		a.recvMask |= 1 << (a.largest - pn - 1)
	}
	return gap
}

// onAck handles the peer's ack: its largest received packet number (low 16
// bits) and the mask of missing ones below it. Datagrams it reports
// missing, or that fall below its reach, are lost and sent again.
func (a *ARQ) onAck(now time.Time, low, missing uint64) {
	if a.nextPN == 0 {
		return
	}
	top := a.nextPN - 1
	l := (top &^ 0xffff) | low
	if l > top {
		if l < 1<<16 {
			return // acks a datagram we never sent
		}
		l -= 1 << 16
	}
	newly := false
	keep := a.flight[:0]
	for _, e := range a.flight {
		if e.pn > l {
			keep = append(keep, e)
			continue
		}
		d := l - e.pn
		got := d == 0 || (d <= ackMaskBits && missing&(1<<(d-1)) == 0)
		switch {
		case got:
			newly = true
			if e.f != nil {
				e.f.acked = true
			}
			if d == 0 {
				a.rttSample(now.Sub(e.at))
			}
		case e.f != nil && !e.f.acked:
			e.f.lost = true
		}
	}
	clear(a.flight[len(keep):])
	a.flight = keep
	if !a.anyAcked || l > a.largestAcked {
		a.largestAcked, a.anyAcked = l, true
	}
	if newly {
		a.backoff, a.probe, a.probeData = 0, false, false
	}
	n := 0
	for n < len(a.frags) && a.frags[n].acked {
		n++
	}
	if n > 0 {
		clear(a.frags[:n])
		a.frags = a.frags[n:]
		a.base += uint64(n)
	}
}

func (a *ARQ) rttSample(r time.Duration) {
	if r < 0 {
		return
	}
	if !a.haveRTT {
		a.srtt, a.rttvar, a.minRTT, a.haveRTT = r, r/2, r, true
		return
	}
	a.minRTT = min(a.minRTT, r)
	d := a.srtt - r
	if d < 0 {
		d = -d
	}
	a.rttvar += (d - a.rttvar) / 4
	a.srtt += (r - a.srtt) / 8
}
