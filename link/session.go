package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// SessionConfig holds the session's timing and size rules.
type SessionConfig struct {
	BatchWindow   time.Duration // a batch closes this long after its first iq or message (default 50ms)
	MaxBatchBytes int           // ...or when this many stanza bytes are queued (default 16384)
	// PresenceWindow: a batch of presence alone closes this long after its
	// first stanza (default 1s, never shorter than BatchWindow). Presence is
	// state the mirror already answers locally, so it can wait for company:
	// presence trickling in (a login storm) shares frames, and so packets.
	PresenceWindow time.Duration
	AckDelay       time.Duration // a standalone ACK waits this long for DATA to carry it (default 1s)
	Keepalive      time.Duration // send ACKREQ after this long without receiving (default 15m; negative: never)
	DeadAfter      time.Duration // drop the connection after this long without receiving (default 2×Keepalive+1m)
	MaxQueueBytes  int           // queued + unacknowledged stanza bytes: the spool bound (default 64 MiB)
	MaxAge         time.Duration // an iq or message not acknowledged after this long is handed back (default 24h)
	// MaxDecoded is the most bytes of XML one received DATA frame may
	// decode to (default max(MaxBatchBytes, 262144), at most
	// compress.MaxBatchBytes): the decoder's memory bound, announced in
	// HELLO so that the peer's encoder keeps to it. The gateway sets
	// max(max_batch_bytes, max_stanza_size).
	MaxDecoded int
	Codec      []compress.Option
}

// DefaultPresenceWindow is PresenceWindow when none is configured.
const DefaultPresenceWindow = time.Second

// maxInterval stands for "never" in timer arithmetic without overflowing.
const maxInterval = 1000 * time.Hour

// DefaultKeepalive is the keepalive period when none is configured: on an
// idle link one ACKREQ/ACK exchange per period (about 300 wire bytes on TCP)
// is all that crosses; a dead idle link is noticed within DeadAfter, and a
// link with traffic notices at once from its writes.
const DefaultKeepalive = 15 * time.Minute

func (c *SessionConfig) populate() {
	if c.BatchWindow <= 0 {
		c.BatchWindow = 50 * time.Millisecond
	}
	if c.PresenceWindow <= 0 {
		c.PresenceWindow = DefaultPresenceWindow
	}
	c.PresenceWindow = max(c.PresenceWindow, c.BatchWindow)
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16384
	}
	if c.AckDelay <= 0 {
		c.AckDelay = time.Second
	}
	if c.Keepalive == 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.Keepalive < 0 || c.Keepalive > maxInterval {
		c.Keepalive = maxInterval
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = min(2*c.Keepalive+time.Minute, maxInterval)
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 64 << 20
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxDecoded <= 0 {
		c.MaxDecoded = max(c.MaxBatchBytes, 262144)
	}
	c.MaxDecoded = min(max(c.MaxDecoded, MinDecoded), compress.MaxBatchBytes)
}

// ErrQueueFull is returned by Enqueue when the session holds MaxQueueBytes
// and no queued presence can make room.
var ErrQueueFull = errors.New("link: send queue full")

// Counters are a session's running totals for one direction.
type Counters struct {
	Stanzas       uint64 // stanzas carried in DATA frames (retransmissions not counted again)
	StanzaBytes   uint64 // their raw XML bytes
	Frames        uint64 // frames of every type
	LinkBytes     uint64 // bytes of those frames (type, length, payload)
	Retransmitted uint64 // DATA frame bytes sent again after a resume
}

// Drops counts what the send queue removed without sending.
type Drops struct {
	Coalesced    uint64 // presence replaced by a newer one for the same key
	PresenceFull uint64 // presence dropped, oldest first, to make room
	Expired      uint64 // iqs and messages handed back after MaxAge
	ExpiredPres  uint64 // presence dropped after MaxAge
	Refused      uint64 // items refused by Enqueue (queue full)
	// Unencodable counts items the codec cannot carry to the peer (too big
	// for the peer's decoder): refused by Enqueue, or taken out of a batch
	// one by one, handed back (iq, message) with the reason (TakeRejected)
	// while the rest of the batch goes.
	Unencodable uint64
}

// Rejected is an item the session could not send, and why.
type Rejected struct {
	Item
	Err error
}

// OpKind names a change the spool must record; see Op.
type OpKind uint8

// Spool operations emitted by the session.
const (
	OpFrame OpKind = iota + 1 // DATA frame N of Epoch carries IDs
	OpAck                     // frames 1..N of Epoch acknowledged: their items leave
	OpDrop                    // IDs removed without being sent
	OpRecv                    // N DATA frames of the peer's Epoch received
)

// Op is one change of durable state, drained with TakeOps and written to the
// spool before the frames Poll returned go on the wire.
type Op struct {
	Kind  OpKind
	Epoch uint32
	N     uint32
	IDs   []uint64
}

type sentFrame struct {
	block   []byte    // the codec block, kept byte for byte for resumption (nil once the encoder is lost)
	entries []entry   // its stanzas, for re-encoding in a new epoch
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
	peerMax    int // the most bytes of XML the peer's decoder takes from one block
	epoch      uint32
	hi, lo     []*entry          // queued, not yet in a frame: iq/message (and promoted presence), presence
	coalesce   map[string]*entry // queued presence in lo by Coalesce key
	loPairs    map[string]int    // entries in lo by Pair
	queueBytes int               // bytes in hi and lo
	firstQueue time.Time         // when the oldest queued stanza was queued
	firstHi    time.Time         // when hi last became non-empty
	nextExpiry time.Time         // earliest Expires in the queues (zero: none)
	unacked    []sentFrame
	held       int           // bytes queued and unacked
	acked      uint32        // DATA frames of epoch the peer acknowledged
	resend     int           // unacked[resend:] were not yet sent on this connection
	sentData   uint32        // DATA frames sent in this epoch
	announce   bool          // the epoch changed after our HELLO: send EPOCH first
	encLost    bool          // restored from the spool: the peer's decoder context of epoch is gone with our encoder
	srtt       time.Duration // see RTT

	// receive side
	dec       *compress.Decoder
	peerEpoch uint32
	h         uint32 // DATA frames of peerEpoch received
	decLost   bool   // restored h with a fresh decoder: the peer must start a new epoch
	ackOwed   bool
	ackDue    time.Time
	ackNow    bool

	// connection
	up        bool
	gotHello  bool
	justHello bool // the last frame received was the peer's HELLO: an EPOCH frame may follow
	lastRecv  time.Time
	lastSent  time.Time
	askedAck  bool
	hello     bool // HELLO not yet returned by Poll

	ops      []Op
	expired  []Item
	rejected []Rejected
	handback bool // whether expired iqs/messages are collected for TakeExpired

	Out, In               Counters
	Drops                 Drops
	Resumes, EpochChanges uint64
	StaleAcks             uint64 // acks counting our previous epoch, ignored
	// ProtocolErrors counts frames Receive refused (the connection is
	// dropped): what a misbehaving or broken peer sent.
	ProtocolErrors uint64
}

// NewSession returns a session with no connection. newID supplies epoch
// numbers (random, nonzero); it is the session's only source of entropy.
func NewSession(cfg SessionConfig, newID func() uint32) (*Session, error) {
	cfg.populate()
	enc, err := compress.NewEncoder(cfg.Codec...)
	if err != nil {
		return nil, err
	}
	dec, err := compress.NewDecoder(append(slices.Clip(cfg.Codec), compress.WithMaxDecoded(cfg.MaxDecoded))...)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, newID: newID, enc: enc, dec: dec, coalesce: map[string]*entry{}, loPairs: map[string]int{},
		peerMax: compress.MaxBatchBytes}
	s.epoch = s.nextEpoch()
	return s, nil
}

// Restored is the durable state a session resumes from after a restart (see
// package link/spool).
type Restored struct {
	Epoch     uint32     // the send epoch the peer may hold
	Acked     uint32     // DATA frames of Epoch acknowledged
	Frames    [][]uint64 // ids of frames Acked+1, Acked+2, … of Epoch
	Items     []Stored   // every item not acknowledged, in spool order
	PeerEpoch uint32     // the peer's epoch we were decoding
	H         uint32     // DATA frames of it received
}

// Stored is an item with its spool id.
type Stored struct {
	ID uint64
	Item
}

// Restore loads durable state into a new session, before its first
// connection. Items in Frames are sent again (re-encoded in a new epoch
// unless the peer acknowledges them in its HELLO), ahead of the others; the
// others are queued in spool (acceptance) order by the rules of Enqueue, so
// each pair keeps its order.
func (s *Session) Restore(r Restored, now time.Time) {
	byID := make(map[uint64]Item, len(r.Items))
	for _, it := range r.Items {
		byID[it.ID] = it.Item
	}
	if r.Epoch != 0 {
		s.epoch, s.acked = r.Epoch, r.Acked
		s.sentData = r.Acked + uint32(len(r.Frames))
		s.encLost = s.sentData > 0
		for _, ids := range r.Frames {
			var f sentFrame
			for _, id := range ids {
				if it, ok := byID[id]; ok {
					f.entries = append(f.entries, entry{id: id, Item: it})
					s.held += len(it.Data)
					delete(byID, id)
				}
			}
			s.unacked = append(s.unacked, f)
		}
	}
	for _, it := range r.Items {
		if _, ok := byID[it.ID]; ok {
			s.push(now, &entry{id: it.ID, Item: it.Item})
		}
	}
	if r.PeerEpoch != 0 {
		s.peerEpoch, s.h = r.PeerEpoch, r.H
		s.decLost = r.H > 0
	}
}

// nextEpoch returns a new epoch number whose low two bits differ from the
// current one's, so that acks still counting the current epoch can be told
// from acks of the new one (see onTaggedAck).
func (s *Session) nextEpoch() uint32 {
	for {
		if id := s.newID(); id != 0 && id&3 != s.epoch&3 {
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
		n += len(f.entries)
	}
	return len(s.hi) + len(s.lo), n
}

// WaitingByPriority returns the stanzas waiting for a frame per priority:
// iq and message (high), presence (low). Presence taken ahead of a
// high-class item of its pair, or re-encoded in a new epoch, counts as high.
func (s *Session) WaitingByPriority() (high, low int) { return len(s.hi), len(s.lo) }

// HeldBytes returns the stanza bytes queued and unacknowledged.
func (s *Session) HeldBytes() int { return s.held }

// Oldest returns when the oldest stanza still queued or unacknowledged was
// queued (zero when none, or unknown).
func (s *Session) Oldest() time.Time {
	if len(s.unacked) > 0 {
		return s.unacked[0].queued
	}
	if len(s.hi)+len(s.lo) > 0 {
		return s.firstQueue
	}
	return time.Time{}
}

// RTT is the smoothed time from sending a DATA frame to its cumulative ack
// (RFC 6298 weights; it includes the peer's ack delay), 0 before the first
// sample.
func (s *Session) RTT() time.Duration { return s.srtt }

func (s *Session) rttSample(r time.Duration) {
	if s.srtt == 0 {
		s.srtt = r
		return
	}
	s.srtt += (r - s.srtt) / 8
}

// CollectExpired makes the session keep expired iqs and messages for
// TakeExpired (otherwise they are only counted).
func (s *Session) CollectExpired() { s.handback = true }

// Enqueue adds a stanza with spool id id to the send queue. A presence with
// a Coalesce key replaces a queued one with the same key: in its place when
// it is the only queued presence of its Pair, else by dropping it and
// queueing the new one at the end (so no presence of the pair is passed).
// A high-class item
// with a Pair takes every queued presence of that pair into the high queue,
// ahead of itself and out of reach of coalescing, so that the pair's order
// holds. When the queue is full, queued presence is dropped oldest first to
// make room; if that is not enough, ErrQueueFull. A stanza bigger than the
// peer's decoder takes (its HELLO says how much) is refused with an error
// wrapping compress.ErrUnencodable. An Item without Expires gets
// now+MaxAge.
func (s *Session) Enqueue(now time.Time, id uint64, it Item) error {
	if n := len(it.Data); n > compress.MaxStanzaSize || n > s.peerMax {
		// Too big for the peer's decoder (a stanza decodes to about its
		// own size): refused now, so the gateway bounces it at ingress;
		// batch takes out the rarer one that grows when canonicalized.
		s.Drops.Unencodable++
		return &compress.UnencodableError{Limit: compress.LimitDecoded, Value: n, Max: min(compress.MaxStanzaSize, s.peerMax)}
	}
	if it.Expires.IsZero() {
		it.Expires = now.Add(s.cfg.MaxAge)
	}
	if it.Class.low() && it.Coalesce != "" {
		if old := s.coalesce[it.Coalesce]; old != nil {
			d := len(it.Data) - len(old.Data)
			if old.Pair != it.Pair || (it.Pair != "" && s.loPairs[it.Pair] > 1) {
				// Other presence of the pair is queued (perhaps after the
				// old one): replacing in place could pass it. The old one
				// goes; the new one joins the end of the queue below.
				s.removeLo(old)
				s.op(Op{Kind: OpDrop, IDs: []uint64{old.id}})
				s.Drops.Coalesced++
			} else if s.held+d <= s.cfg.MaxQueueBytes || d <= 0 {
				s.op(Op{Kind: OpDrop, IDs: []uint64{old.id}})
				s.Drops.Coalesced++
				old.id, old.Item = id, it
				s.queueBytes += d
				s.held += d
				s.noteExpiry(it.Expires)
				return nil
			}
		}
	}
	var dropped []uint64
	for s.held+len(it.Data) > s.cfg.MaxQueueBytes && len(s.lo) > 0 {
		e := s.lo[0]
		s.lo = s.lo[1:]
		s.unqueue(e)
		dropped = append(dropped, e.id)
		s.Drops.PresenceFull++
	}
	if len(dropped) > 0 {
		s.op(Op{Kind: OpDrop, IDs: dropped})
	}
	if s.held+len(it.Data) > s.cfg.MaxQueueBytes {
		s.Drops.Refused++
		return ErrQueueFull
	}
	s.push(now, &entry{id: id, Item: it})
	return nil
}

// SetID renumbers the queued item with id from (the last one enqueued) to.
func (s *Session) SetID(from, to uint64) {
	for _, q := range [][]*entry{s.hi, s.lo} {
		for i := len(q) - 1; i >= 0; i-- {
			if q[i].id == from {
				q[i].id = to
				return
			}
		}
	}
}

// Unenqueue removes the queued item with id (the last one enqueued), when
// it could not be stored after all.
func (s *Session) Unenqueue(id uint64) {
	for _, q := range []*[]*entry{&s.hi, &s.lo} {
		for i := len(*q) - 1; i >= 0; i-- {
			if e := (*q)[i]; e.id == id {
				s.unqueue(e)
				*q = append((*q)[:i], (*q)[i+1:]...)
				return
			}
		}
	}
}

func (s *Session) push(now time.Time, e *entry) {
	if len(s.hi)+len(s.lo) == 0 {
		s.firstQueue = now
	}
	if e.Class.low() {
		s.lo = append(s.lo, e)
		e.inLo = true
		s.countLo(e.Pair, 1)
		if e.Coalesce != "" {
			s.coalesce[e.Coalesce] = e
		}
	} else {
		if len(s.hi) == 0 {
			s.firstHi = now
		}
		pair := e.Pair != "" && s.loPairs[e.Pair] > 0
		group := e.Group != "" && e.Group != e.Pair && s.loPairs[e.Group] > 0
		if pair || group {
			s.promote(e.Pair, e.Group)
		}
		s.hi = append(s.hi, e)
	}
	s.queueBytes += len(e.Data)
	s.held += len(e.Data)
	s.noteExpiry(e.Expires)
}

// countLo adds d to the entries of pair in lo.
func (s *Session) countLo(pair string, d int) {
	if pair == "" {
		return
	}
	if n := s.loPairs[pair] + d; n > 0 {
		s.loPairs[pair] = n
	} else {
		delete(s.loPairs, pair)
	}
}

// promote moves the entries of pair or group from lo to the end of hi, in
// order: a high-class item of the pair (or group) is about to be queued
// behind them.
func (s *Session) promote(pair, group string) {
	out := s.lo[:0]
	for _, e := range s.lo {
		if e.Pair == "" || (e.Pair != pair && e.Pair != group) {
			out = append(out, e)
			continue
		}
		e.inLo = false
		if e.Coalesce != "" && s.coalesce[e.Coalesce] == e {
			delete(s.coalesce, e.Coalesce)
		}
		s.hi = append(s.hi, e)
	}
	clear(s.lo[len(out):])
	s.lo = out
	delete(s.loPairs, pair)
	delete(s.loPairs, group)
}

// removeLo takes e out of lo.
func (s *Session) removeLo(e *entry) {
	if i := slices.Index(s.lo, e); i >= 0 {
		s.unqueue(e)
		s.lo = slices.Delete(s.lo, i, i+1)
	}
}

// unqueue accounts for e leaving a queue (the caller removes it).
func (s *Session) unqueue(e *entry) {
	s.queueBytes -= len(e.Data)
	s.held -= len(e.Data)
	if e.inLo {
		e.inLo = false
		s.countLo(e.Pair, -1)
	}
	if e.Coalesce != "" && s.coalesce[e.Coalesce] == e {
		delete(s.coalesce, e.Coalesce)
	}
}

func (s *Session) noteExpiry(t time.Time) {
	if !t.IsZero() && (s.nextExpiry.IsZero() || t.Before(s.nextExpiry)) {
		s.nextExpiry = t
	}
}

// expire removes queued items past their Expires.
func (s *Session) expire(now time.Time) {
	if s.nextExpiry.IsZero() || now.Before(s.nextExpiry) {
		return
	}
	s.nextExpiry = time.Time{}
	var gone []uint64
	keep := func(q []*entry) []*entry {
		out := q[:0]
		for _, e := range q {
			if !e.Expires.IsZero() && !now.Before(e.Expires) {
				s.unqueue(e)
				gone = append(gone, e.id)
				if e.Class.low() {
					s.Drops.ExpiredPres++
				} else {
					s.Drops.Expired++
					if s.handback {
						s.expired = append(s.expired, e.Item)
					}
				}
				continue
			}
			s.noteExpiry(e.Expires)
			out = append(out, e)
		}
		clear(q[len(out):])
		return out
	}
	s.hi, s.lo = keep(s.hi), keep(s.lo)
	if len(gone) > 0 {
		s.op(Op{Kind: OpDrop, IDs: gone})
	}
}

// Expire hands back (or drops) queued items past their Expires; Poll does
// it too, but Poll runs only while connected.
func (s *Session) Expire(now time.Time) { s.expire(now) }

// TakeOps returns the spool operations since the last call.
func (s *Session) TakeOps() []Op {
	o := s.ops
	s.ops = nil
	return o
}

// TakeRejected returns the items taken out of a batch because the codec
// could not carry them (Drops.Unencodable), with the reason, since the
// last call.
func (s *Session) TakeRejected() []Rejected {
	r := s.rejected
	s.rejected = nil
	return r
}

// TakeExpired returns the iqs and messages that expired since the last call
// (see CollectExpired).
func (s *Session) TakeExpired() []Item {
	e := s.expired
	s.expired = nil
	return e
}

func (s *Session) op(o Op) { s.ops = append(s.ops, o) }

// Connected starts a new connection: the next Poll returns HELLO first.
func (s *Session) Connected(now time.Time) {
	s.up, s.gotHello, s.justHello, s.hello, s.askedAck = true, false, false, true, false
	s.lastRecv, s.lastSent = now, now
	s.resend = 0
}

// Disconnected ends the current connection. Nothing is lost: unacknowledged
// frames wait for the next HELLO.
func (s *Session) Disconnected() { s.up = false }

// Ready reports whether the peer's HELLO arrived on this connection.
func (s *Session) Ready() bool { return s.up && s.gotHello }

// Receive handles one frame from the peer and returns the stanzas it
// delivered, in order. An error means the connection must be dropped; the
// frame is counted in ProtocolErrors.
func (s *Session) Receive(now time.Time, f Frame) ([][]byte, error) {
	batch, err := s.receive(now, f)
	if err != nil {
		s.ProtocolErrors++
	}
	return batch, err
}

func (s *Session) receive(now time.Time, f Frame) ([][]byte, error) {
	afterHello := s.justHello
	s.justHello = false
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
		s.gotHello, s.justHello = true, true
		s.onHello(now, h)
		return nil, nil
	case FrameAck:
		a, tag, rest, err := parseAck(f.Payload, "ACK")
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: bad ACK", ErrProtocol)
		}
		return nil, s.onTaggedAck(a, tag)
	case FrameAckReq:
		s.ackNow = true
		return nil, nil
	case FrameEpoch:
		// The peer starts a new epoch only on reading our HELLO, and
		// announces it in the next frame it writes: at most one EPOCH per
		// connection, right after its HELLO and after ours went out. Any
		// other is refused before it touches the decoder or the spool.
		e, rest, err := parseCounter(f.Payload, "EPOCH")
		if err != nil || len(rest) != 0 || e == 0 {
			return nil, fmt.Errorf("%w: bad EPOCH", ErrProtocol)
		}
		if !afterHello || s.hello {
			return nil, fmt.Errorf("%w: EPOCH %d not right after the HELLOs", ErrProtocol, e)
		}
		if e == s.peerEpoch {
			if s.h == 0 {
				// The HELLO just read named this epoch already: a peer
				// before the fix of Poll announces it again. Nothing to do.
				return nil, nil
			}
			return nil, fmt.Errorf("%w: bad EPOCH: %d is the epoch in progress", ErrProtocol, e)
		}
		s.newPeerEpoch(e)
		return nil, nil
	case FrameData:
		a, tag, block, err := parseAck(f.Payload, "DATA ack")
		if err != nil {
			return nil, err
		}
		if err := s.onTaggedAck(a, tag); err != nil {
			return nil, err
		}
		if s.decLost {
			return nil, fmt.Errorf("%w: DATA in epoch %d after we reported its decoder lost", ErrProtocol, s.peerEpoch)
		}
		batch, err := s.dec.Decode(block)
		if err != nil {
			return nil, fmt.Errorf("link: DATA frame %d of epoch %d: %w", s.h+1, s.peerEpoch, err)
		}
		s.h++
		s.op(Op{Kind: OpRecv, Epoch: s.peerEpoch, N: s.h})
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

func (s *Session) newPeerEpoch(e uint32) {
	s.dec.Reset()
	s.peerEpoch, s.h, s.decLost = e, 0, false
	s.op(Op{Kind: OpRecv, Epoch: e})
}

func (s *Session) onHello(now time.Time, h Hello) {
	// What the peer's decoder takes from one frame: every batch from now
	// on keeps to it (a peer restarted with a lower bound has lost its
	// decoder, so what it has not acked is encoded again below).
	s.peerMax = int(h.MaxDecoded)
	s.enc.SetMaxDecoded(s.peerMax)
	// Receive side: a new epoch of the peer means a fresh decoder.
	if h.Epoch != s.peerEpoch {
		s.newPeerEpoch(h.Epoch)
	}
	// Send side.
	if h.PeerEpoch == s.epoch && s.ackable(h.H) {
		s.dropAcked(h.H)
		if h.Flags&HelloDecoderLost == 0 && !s.encLost {
			s.resend = 0 // every remaining unacked frame goes again, as it was
			if len(s.unacked) > 0 {
				s.Resumes++
			}
			return
		}
	}
	if s.sentData == 0 {
		return // nothing sent in this epoch yet: the peer starts it with us
	}
	// The peer lost our stream (or we lost our encoder): new epoch,
	// re-encode what it never acked, ahead of the queue and in the order it
	// was sent, whatever its class (a pair's later stanzas may be queued).
	var again []*entry
	for _, f := range s.unacked {
		for i := range f.entries {
			e := f.entries[i]
			s.held -= len(e.Data)
			again = append(again, &e)
		}
	}
	s.unacked, s.acked, s.resend = nil, 0, 0
	s.EpochChanges++
	s.epoch = s.nextEpoch()
	s.sentData = 0
	s.announce = true
	s.encLost = false
	s.enc.Reset()
	if len(again) > 0 {
		for _, e := range again {
			s.queueBytes += len(e.Data)
			s.held += len(e.Data)
			s.noteExpiry(e.Expires)
		}
		s.hi = append(again, s.hi...)
		s.firstQueue, s.firstHi = time.Time{}, time.Time{} // re-encoded stanzas go at once
	}
	s.expire(now)
}

// ackable reports whether a is a valid cumulative ack: between what was
// already acknowledged and what was sent.
func (s *Session) ackable(a uint32) bool {
	return a-s.acked <= uint32(len(s.unacked))
}

// onTaggedAck handles an ack field: one counting an epoch other than our
// current one (tag: its low two bits) was sent before the peer read our
// EPOCH frame and is ignored (StaleAcks).
func (s *Session) onTaggedAck(a, tag uint32) error {
	if tag != s.epoch&3 {
		s.StaleAcks++
		return nil
	}
	return s.onAck(a)
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

func (s *Session) dropAcked(a uint32) {
	n := int(a - s.acked)
	if n == 0 {
		return
	}
	for _, f := range s.unacked[:n] {
		for _, e := range f.entries {
			s.held -= len(e.Data)
		}
	}
	clear(s.unacked[:n])
	s.unacked = s.unacked[n:]
	s.resend = max(0, s.resend-n)
	s.acked = a
	s.op(Op{Kind: OpAck, Epoch: s.epoch, N: a})
}

// Poll returns the frames to write now, as one buffer (nil if none). The
// caller drains TakeOps into the spool, writes the frames and calls Poll
// again when the pacer allows.
func (s *Session) Poll(now time.Time) []byte {
	s.expire(now)
	if !s.up {
		return nil
	}
	var out []byte
	if s.hello {
		// This HELLO names the current epoch: an EPOCH frame owed for it
		// (the epoch changed after an earlier HELLO, or on reading the
		// peer's HELLO before writing this one) would name it again, and
		// the peer refuses an EPOCH naming the epoch it already decodes.
		s.hello, s.announce = false, false
		var flags byte
		if s.decLost {
			flags |= HelloDecoderLost
		}
		out = s.frame(out, FrameHello, hello(flags, s.epoch, s.peerEpoch, s.h, s.cfg.MaxDecoded).append(nil))
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
	if due := s.batchDue(); !due.IsZero() && !now.Before(due) {
		if b, ok := s.batch(now, out); ok {
			return b
		}
	}
	if s.ackNow || (s.ackOwed && !now.Before(s.ackDue)) {
		out = s.frame(out, FrameAck, appendAck(nil, s.h, s.peerEpoch))
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

// batchDue returns when the queued stanzas should leave as a batch (zero:
// nothing queued): BatchWindow after the first iq or message or
// PresenceWindow after the first stanza, whichever comes first (only the
// latter when only presence waits), or at once when MaxBatchBytes are
// queued. A batch takes queued presence along
// with the iqs and messages.
func (s *Session) batchDue() time.Time {
	switch {
	case len(s.hi)+len(s.lo) == 0:
		return time.Time{}
	case s.queueBytes >= s.cfg.MaxBatchBytes:
		return time.Unix(0, 1) // at once; not zero
	case len(s.hi) == 0:
		return s.firstQueue.Add(s.cfg.PresenceWindow)
	}
	due := s.firstHi.Add(s.cfg.BatchWindow)
	if d := s.firstQueue.Add(s.cfg.PresenceWindow); len(s.lo) > 0 && d.Before(due) {
		due = d
	}
	return due
}

// batch encodes one DATA frame from the queues: iq and message first, then
// presence, up to MaxBatchBytes (at least one stanza). Presence joins the
// frame only when the high queue is empty: a presence may have been queued
// after a high-class item of its pair that did not fit.
func (s *Session) batch(now time.Time, out []byte) ([]byte, bool) {
	var ents []entry
	size := 0
	take := func(q []*entry) []*entry {
		n := 0
		for n < len(q) && (len(ents) == 0 || size+len(q[n].Data) <= s.cfg.MaxBatchBytes) && len(ents) < compress.MaxBatchStanzas {
			e := q[n]
			s.unqueue(e)
			ents = append(ents, *e)
			size += len(e.Data)
			n++
		}
		clear(q[:n])
		return q[n:]
	}
	s.hi = take(s.hi)
	if len(s.hi) == 0 {
		s.lo = take(s.lo)
	}
	if len(ents) == 0 {
		return out, false
	}
	for i := range ents {
		s.held += len(ents[i].Data) // unqueue took it off; it stays held until acked
	}
	stanzas := make([][]byte, len(ents))
	for i, e := range ents {
		stanzas[i] = e.Data
	}
	block, err := s.enc.Encode(stanzas)
	requeued := false // stanzas left for the next frame go at once
	for err != nil {
		// Nothing was encoded: take out the stanza the codec refuses (or,
		// if only the batch is too big, leave it and the rest for the next
		// frame), and encode the others.
		var ue *compress.UnencodableError
		i := 0
		if errors.As(err, &ue) {
			i = ue.Index
		}
		switch {
		case ue != nil && ue.Batch() && i > 0:
			s.requeue(ents[i:])
		case ue != nil:
			s.reject(ents[i], err)
			s.requeue(ents[i+1:])
		default: // not the stanzas' fault: cannot happen, but never wedge
			for _, e := range ents {
				s.reject(e, err)
			}
			i = 0
		}
		requeued = requeued || len(ents) > i+1 || ue != nil && ue.Batch() && i > 0
		ents, stanzas = ents[:i], stanzas[:i]
		if len(ents) == 0 {
			return out, false
		}
		block, err = s.enc.Encode(stanzas)
	}
	size = 0
	ids := make([]uint64, len(ents))
	for i, e := range ents {
		ids[i] = e.id
		size += len(e.Data)
	}
	queued := s.firstQueue
	if len(s.hi)+len(s.lo) > 0 && !requeued {
		s.firstQueue = now
	}
	if len(s.hi) > 0 && !requeued {
		s.firstHi = now
	}
	s.unacked = append(s.unacked, sentFrame{block: append([]byte(nil), block...), entries: ents, queued: queued, sent: now})
	s.resend = len(s.unacked)
	s.Out.Stanzas += uint64(len(ents))
	s.Out.StanzaBytes += uint64(size)
	s.lastSent = now
	s.sentData = s.acked + uint32(len(s.unacked)) // this frame's sequence number
	s.op(Op{Kind: OpFrame, Epoch: s.epoch, N: s.sentData, IDs: ids})
	return s.data(out, block), true
}

// requeue puts entries taken for a batch back at the head of the queue, in
// order, to go in the next frame.
func (s *Session) requeue(ents []entry) {
	if len(ents) == 0 {
		return
	}
	again := make([]*entry, len(ents))
	for i := range ents {
		e := ents[i]
		s.queueBytes += len(e.Data)
		s.noteExpiry(e.Expires)
		again[i] = &e
	}
	s.hi = append(again, s.hi...)
	s.firstQueue, s.firstHi = time.Time{}, time.Time{}
}

// reject drops an entry taken for a batch that the codec refuses, counted
// and handed back with the reason.
func (s *Session) reject(e entry, err error) {
	s.held -= len(e.Data)
	s.op(Op{Kind: OpDrop, IDs: []uint64{e.id}})
	s.Drops.Unencodable++
	s.rejected = append(s.rejected, Rejected{Item: e.Item, Err: err})
}

func (s *Session) data(out, block []byte) []byte {
	p := appendAck(make([]byte, 0, len(block)+5), s.h, s.peerEpoch)
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
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	earlier(s.nextExpiry)
	if !s.up {
		return next
	}
	if s.gotHello {
		earlier(s.batchDue())
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
