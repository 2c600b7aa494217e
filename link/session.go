package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// SessionConfig holds the session's timing and size rules.
type SessionConfig struct {
	BatchWindow   time.Duration // a batch closes this long after its first stanza (default 50ms)
	MaxBatchBytes int           // ...or when this many stanza bytes are queued (default 16384)
	AckDelay      time.Duration // a standalone ACK waits this long for DATA to carry it (default 1s)
	Keepalive     time.Duration // send ACKREQ after this long without receiving (default 60s)
	DeadAfter     time.Duration // drop the connection after this long without receiving (default 3×Keepalive)
	MaxQueueBytes int           // queued + unacknowledged stanza bytes (default 64 MiB)
	Codec         []compress.Option
}

func (c *SessionConfig) populate() {
	if c.BatchWindow <= 0 {
		c.BatchWindow = 50 * time.Millisecond
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16384
	}
	if c.AckDelay <= 0 {
		c.AckDelay = time.Second
	}
	if c.Keepalive <= 0 {
		c.Keepalive = 60 * time.Second
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 3 * c.Keepalive
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 64 << 20
	}
}

// ErrQueueFull is returned by Enqueue when the session holds MaxQueueBytes.
var ErrQueueFull = errors.New("link: send queue full")

// Counters are a session's running totals for one direction.
type Counters struct {
	Stanzas       uint64 // stanzas carried in DATA frames (retransmissions not counted again)
	StanzaBytes   uint64 // their raw XML bytes
	Frames        uint64 // frames of every type
	LinkBytes     uint64 // bytes of those frames (type, length, payload)
	Retransmitted uint64 // DATA frame bytes sent again after a resume
}

type sentFrame struct {
	block   []byte    // the codec block, kept byte for byte for resumption
	stanzas [][]byte  // its stanzas, for re-encoding in a new epoch
	queued  time.Time // when its oldest stanza was queued (zero: unknown)
	sent    time.Time // first sent; zero once sent again (no RTT sample, as Karn's rule)
}

// Session is the pure state machine of one side of the link session. It
// survives connections: Connected starts a new one, Disconnected ends it.
// It is not safe for concurrent use.
type Session struct {
	cfg   SessionConfig
	newID func() uint32 // epoch numbers; never returns 0

	// send side
	enc        *compress.Encoder
	epoch      uint32
	queue      [][]byte  // stanzas not yet in a frame
	queueBytes int       // their bytes
	firstQueue time.Time // when queue[0] was queued
	unacked    []sentFrame
	held       int    // bytes in queue and unacked
	acked      uint32 // DATA frames of epoch the peer acknowledged
	resend     int    // unacked[resend:] were not yet sent on this connection
	sentData   uint32 // DATA frames sent in this epoch
	announce   bool   // the epoch changed after our HELLO: send EPOCH first

	// receive side
	dec       *compress.Decoder
	peerEpoch uint32
	h         uint32 // DATA frames of peerEpoch received
	ackOwed   bool
	ackDue    time.Time
	ackNow    bool

	// connection
	up       bool
	gotHello bool
	lastRecv time.Time
	lastSent time.Time
	askedAck bool
	hello    bool // HELLO not yet returned by Poll

	Out, In               Counters
	Resumes, EpochChanges uint64
	// SRTT is the smoothed time from sending a DATA frame to its cumulative
	// ack (RFC 6298 weights; it includes the peer's ack delay), 0 before the
	// first sample.
	SRTT time.Duration
}

// HeldBytes returns the stanza bytes queued and unacknowledged.
func (s *Session) HeldBytes() int { return s.held }

// Oldest returns when the oldest stanza still queued or unacknowledged was
// queued (zero when none, or unknown after an epoch change).
func (s *Session) Oldest() time.Time {
	if len(s.unacked) > 0 {
		return s.unacked[0].queued
	}
	if len(s.queue) > 0 {
		return s.firstQueue
	}
	return time.Time{}
}

// NewSession returns a session with no connection. newID supplies epoch
// numbers (random, nonzero); it is the session's only source of entropy.
func NewSession(cfg SessionConfig, newID func() uint32) (*Session, error) {
	cfg.populate()
	enc, err := compress.NewEncoder(cfg.Codec...)
	if err != nil {
		return nil, err
	}
	dec, err := compress.NewDecoder(cfg.Codec...)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, newID: newID, enc: enc, dec: dec}
	s.epoch = s.nextEpoch()
	return s, nil
}

func (s *Session) nextEpoch() uint32 {
	for {
		if id := s.newID(); id != 0 && id != s.epoch {
			return id
		}
	}
}

// Epoch returns the current send epoch.
func (s *Session) Epoch() uint32 { return s.epoch }

// Queued returns the stanzas waiting for a frame and those sent but not yet
// acknowledged.
func (s *Session) Queued() (waiting, unacked int) {
	n := 0
	for _, f := range s.unacked {
		n += len(f.stanzas)
	}
	return len(s.queue), n
}

// Enqueue adds a stanza to the send queue.
func (s *Session) Enqueue(now time.Time, st []byte) error {
	if s.held+len(st) > s.cfg.MaxQueueBytes {
		return ErrQueueFull
	}
	if len(s.queue) == 0 {
		s.firstQueue = now
	}
	s.queue = append(s.queue, st)
	s.queueBytes += len(st)
	s.held += len(st)
	return nil
}

// Connected starts a new connection: the next Poll returns HELLO first.
func (s *Session) Connected(now time.Time) {
	s.up, s.gotHello, s.hello, s.askedAck = true, false, true, false
	s.lastRecv, s.lastSent = now, now
	s.resend = 0
}

// Disconnected ends the current connection. Nothing is lost: unacknowledged
// frames wait for the next HELLO.
func (s *Session) Disconnected() { s.up = false }

// Ready reports whether the peer's HELLO arrived on this connection.
func (s *Session) Ready() bool { return s.up && s.gotHello }

// Receive handles one frame from the peer and returns the stanzas it
// delivered, in order. An error means the connection must be dropped.
func (s *Session) Receive(now time.Time, f Frame) ([][]byte, error) {
	s.lastRecv = now
	s.askedAck = false
	s.In.Frames++
	s.In.LinkBytes += uint64(frameLen(len(f.Payload)))
	if !s.gotHello && f.Type != FrameHello {
		return nil, fmt.Errorf("%w: frame type %#x before HELLO", ErrProtocol, f.Type)
	}
	switch f.Type {
	case FrameHello:
		if s.gotHello {
			return nil, fmt.Errorf("%w: second HELLO", ErrProtocol)
		}
		h, err := ParseHello(f.Payload)
		if err != nil {
			return nil, err
		}
		s.gotHello = true
		s.onHello(h)
		return nil, nil
	case FrameAck:
		a, rest, err := parseCounter(f.Payload, "ACK")
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: bad ACK", ErrProtocol)
		}
		return nil, s.onAck(a)
	case FrameAckReq:
		s.ackNow = true
		return nil, nil
	case FrameEpoch:
		e, rest, err := parseCounter(f.Payload, "EPOCH")
		if err != nil || len(rest) != 0 || e == 0 || e == s.peerEpoch {
			return nil, fmt.Errorf("%w: bad EPOCH", ErrProtocol)
		}
		s.dec.Reset()
		s.peerEpoch, s.h = e, 0
		return nil, nil
	case FrameData:
		a, block, err := parseCounter(f.Payload, "DATA ack")
		if err != nil {
			return nil, err
		}
		if err := s.onAck(a); err != nil {
			return nil, err
		}
		batch, err := s.dec.Decode(block)
		if err != nil {
			return nil, fmt.Errorf("link: DATA frame %d of epoch %d: %w", s.h+1, s.peerEpoch, err)
		}
		s.h++
		if !s.ackOwed {
			s.ackOwed, s.ackDue = true, now.Add(s.cfg.AckDelay)
		}
		s.In.Stanzas += uint64(len(batch))
		for _, st := range batch {
			s.In.StanzaBytes += uint64(len(st))
		}
		return batch, nil
	default:
		return nil, fmt.Errorf("%w: unknown frame type %#x", ErrProtocol, f.Type)
	}
}

func (s *Session) onHello(h Hello) {
	// Receive side: a new epoch of the peer means a fresh decoder.
	if h.Epoch != s.peerEpoch {
		s.dec.Reset()
		s.peerEpoch, s.h = h.Epoch, 0
	}
	// Send side.
	if h.PeerEpoch == s.epoch && s.ackable(h.H) {
		s.dropAcked(h.H)
		s.resend = 0 // every remaining unacked frame goes again, as it was
		if len(s.unacked) > 0 {
			s.Resumes++
		}
		return
	}
	if s.acked == 0 && len(s.unacked) == 0 && s.sentData == 0 {
		return // nothing sent in this epoch yet: the peer starts it with us
	}
	// The peer lost our stream: new epoch, re-encode what it never acked.
	var again [][]byte
	for _, f := range s.unacked {
		again = append(again, f.stanzas...)
	}
	s.unacked, s.acked, s.resend = nil, 0, 0
	s.EpochChanges++
	s.epoch = s.nextEpoch()
	s.sentData = 0
	s.announce = true
	s.enc.Reset()
	if len(again) > 0 {
		s.queue = append(again, s.queue...)
		s.queueBytes = 0
		for _, st := range s.queue {
			s.queueBytes += len(st)
		}
		s.firstQueue = time.Time{} // re-encoded stanzas go at once
	}
}

// ackable reports whether a is a valid cumulative ack: between what was
// already acknowledged and what was sent.
func (s *Session) ackable(a uint32) bool {
	return a-s.acked <= uint32(len(s.unacked))
}

func (s *Session) onAck(a uint32) error {
	if !s.ackable(a) {
		return fmt.Errorf("%w: ack %d outside %d..%d", ErrProtocol, a, s.acked, s.acked+uint32(len(s.unacked)))
	}
	if n := int(a - s.acked); n > 0 {
		if t := s.unacked[n-1].sent; !t.IsZero() && !s.lastRecv.Before(t) {
			s.rttSample(s.lastRecv.Sub(t))
		}
	}
	s.dropAcked(a)
	return nil
}

func (s *Session) rttSample(r time.Duration) {
	if s.SRTT == 0 {
		s.SRTT = r
		return
	}
	s.SRTT += (r - s.SRTT) / 8
}

func (s *Session) dropAcked(a uint32) {
	n := int(a - s.acked)
	for _, f := range s.unacked[:n] {
		for _, st := range f.stanzas {
			s.held -= len(st)
		}
	}
	s.unacked = s.unacked[n:]
	s.resend = max(0, s.resend-n)
	s.acked = a
}

// Poll returns the frames to write now, as one buffer (nil if none). The
// caller writes them and calls Poll again when the pacer allows.
func (s *Session) Poll(now time.Time) []byte {
	if !s.up {
		return nil
	}
	var out []byte
	if s.hello {
		s.hello = false
		out = s.frame(out, FrameHello, Hello{Version, s.epoch, s.peerEpoch, s.h}.append(nil))
	}
	if !s.gotHello {
		return out
	}
	if s.announce {
		s.announce = false
		out = s.frame(out, FrameEpoch, binary.AppendUvarint(nil, uint64(s.epoch)))
	}
	// Resumption: unacked frames the peer has not seen, byte for byte.
	if s.resend < len(s.unacked) {
		f := s.unacked[s.resend]
		s.unacked[s.resend].sent = time.Time{}
		s.resend++
		s.Out.Retransmitted += uint64(len(f.block))
		return s.data(out, f.block)
	}
	if len(s.queue) > 0 && (s.queueBytes >= s.cfg.MaxBatchBytes || !now.Before(s.firstQueue.Add(s.cfg.BatchWindow))) {
		return s.batch(now, out)
	}
	if s.ackNow || (s.ackOwed && !now.Before(s.ackDue)) {
		out = s.frame(out, FrameAck, binary.AppendUvarint(nil, uint64(s.h)))
		s.ackOwed, s.ackNow = false, false
	}
	if !s.askedAck && now.Sub(s.lastRecv) >= s.cfg.Keepalive && now.Sub(s.lastSent) >= s.cfg.Keepalive/2 {
		s.askedAck = true
		out = s.frame(out, FrameAckReq, nil)
	}
	if out != nil {
		s.lastSent = now
	}
	return out
}

func (s *Session) batch(now time.Time, out []byte) []byte {
	// Take stanzas up to MaxBatchBytes (at least one).
	n, size := 0, 0
	for n < len(s.queue) && (n == 0 || size+len(s.queue[n]) <= s.cfg.MaxBatchBytes) && n < compress.MaxBatchStanzas {
		size += len(s.queue[n])
		n++
	}
	stanzas := s.queue[:n:n]
	block, err := s.enc.Encode(stanzas)
	if err != nil {
		// Only an oversized stanza can fail here; the gateway bounds stanza
		// size far below the codec's limit. Drop it rather than wedge.
		s.queue = s.queue[1:]
		s.queueBytes -= len(stanzas[0])
		s.held -= len(stanzas[0])
		return out
	}
	s.queue = s.queue[n:]
	s.queueBytes -= size
	queued := s.firstQueue
	if len(s.queue) > 0 {
		s.firstQueue = now
	}
	s.unacked = append(s.unacked, sentFrame{block: append([]byte(nil), block...), stanzas: stanzas, queued: queued, sent: now})
	s.resend = len(s.unacked)
	s.Out.Stanzas += uint64(n)
	s.Out.StanzaBytes += uint64(size)
	s.lastSent = now
	return s.data(out, block)
}

func (s *Session) data(out, block []byte) []byte {
	s.sentData++
	p := binary.AppendUvarint(make([]byte, 0, len(block)+5), uint64(s.h))
	p = append(p, block...)
	s.ackOwed, s.ackNow = false, false
	return s.frame(out, FrameData, p)
}

func (s *Session) frame(out []byte, typ byte, payload []byte) []byte {
	s.Out.Frames++
	s.Out.LinkBytes += uint64(frameLen(len(payload)))
	return AppendFrame(out, typ, payload)
}

func frameLen(payload int) int {
	return 1 + len(binary.AppendUvarint(nil, uint64(payload))) + payload
}

// Next returns when Poll next has something to do (zero: nothing pending).
func (s *Session) Next() time.Time {
	if !s.up {
		return time.Time{}
	}
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.gotHello {
		if len(s.queue) > 0 {
			earlier(s.firstQueue.Add(s.cfg.BatchWindow))
		}
		if s.ackOwed {
			earlier(s.ackDue)
		}
		if !s.askedAck {
			earlier(maxTime(s.lastRecv.Add(s.cfg.Keepalive), s.lastSent.Add(s.cfg.Keepalive/2)))
		}
	}
	earlier(s.lastRecv.Add(s.cfg.DeadAfter))
	return next
}

// Pending reports whether Poll would return frames at now.
func (s *Session) Pending(now time.Time) bool {
	if !s.up {
		return false
	}
	if s.hello || s.ackNow || (s.gotHello && s.announce) {
		return true
	}
	if n := s.Next(); !n.IsZero() && !now.Before(n) {
		return true
	}
	return s.gotHello && s.resend < len(s.unacked)
}

// Dead reports whether nothing was received for DeadAfter.
func (s *Session) Dead(now time.Time) bool {
	return s.up && now.Sub(s.lastRecv) >= s.cfg.DeadAfter
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
