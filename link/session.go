package link

import (
	"errors"
	"iter"
	"slices"
	"strings"
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
	Keepalive      time.Duration // send ACKREQ after this long without receiving (default 15m; negative: never); one side of the pair waits 5/4 of it

	DeadAfter     time.Duration // drop the connection after this long without receiving (default 2×Keepalive+1m)
	MaxQueueBytes int           // queued + unacknowledged stanza bytes: the spool bound (default 64 MiB)
	// MaxSenderBytes bounds the bytes of one sender (the bare JID before
	// the '|' of Item.Pair) among them (default MaxQueueBytes/4; at most
	// MaxQueueBytes), so that one user's flood while the link is down
	// cannot take the whole spool from everyone else. Items without a
	// Pair (the presence mirror's own) are not limited.
	MaxSenderBytes int
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
	if c.MaxSenderBytes <= 0 {
		c.MaxSenderBytes = c.MaxQueueBytes / 4
	}
	c.MaxSenderBytes = min(c.MaxSenderBytes, c.MaxQueueBytes)
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

// ErrSenderFull is returned by Enqueue when the stanza's sender holds
// MaxSenderBytes of the queue already.
var ErrSenderFull = errors.New("link: the sender's share of the send queue is full")

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
	SenderFull   uint64 // refused: the sender holds MaxSenderBytes
	Expired      uint64 // iqs and messages handed back after MaxAge
	ExpiredPres  uint64 // presence dropped after MaxAge
	Refused      uint64 // items refused by Enqueue (queue full)
	// Unencodable counts items the codec cannot carry to the peer (too big
	// for the peer's decoder): refused by Enqueue, or taken out of a batch
	// one by one, handed back (iq, message) with the reason (TakeRejected)
	// while the rest of the batch goes.
	Unencodable uint64
}

// All yields each Drops counter with its name as metrics give it (the
// field's name in snake case), in field order; TestDropsAll checks it
// names every field once.
func (d Drops) All() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for _, c := range [...]struct {
			name string
			n    uint64
		}{
			{"coalesced", d.Coalesced}, {"presence_full", d.PresenceFull}, {"sender_full", d.SenderFull},
			{"expired", d.Expired},
			{"expired_presence", d.ExpiredPres}, {"refused", d.Refused}, {"unencodable", d.Unencodable},
		} {
			if !yield(c.name, c.n) {
				return
			}
		}
	}
}

// Rejected is an item the session could not send, and why.
type Rejected struct {
	Item
	Err error
}

type sentFrame struct {
	block   []byte    // the codec block, kept byte for byte for resumption (nil once the encoder is lost)
	entries []entry   // its stanzas, for re-encoding in a new epoch
	queued  time.Time // when its oldest stanza was queued (zero: unknown)
	sent    time.Time // first sent; zero once sent again (no RTT sample, as Karn's rule)
	logged  uint64    // entries in sentIDs after its block (0: unknown, restored)
	// echoes: its block echoes what the peer sent (compress "Echoed ids
	// and values"), the lowest entry echoMin of the peer's generation
	// echoEpoch.
	echoes    bool
	echoMin   uint64
	echoEpoch uint32
}

// Session is the pure state machine of one side of the link session. It
// survives connections: Connected starts a new one, Disconnected ends it.
// It is not safe for concurrent use.
//
// Its methods are filed by concept: the send queue (Enqueue … Expire) in
// session_queue.go, what leaves and the peer's acknowledgements of it
// (Poll, batch, acks) in session_send.go, what arrives (Receive, HELLO, a
// new peer epoch) in session_recv.go; this file holds the state, its
// restore from the spool and the timers.
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
	held       int            // bytes queued and unacked
	bySender   map[string]int // held, by sender (Item.Pair's first part), where not 0
	acked      uint32         // DATA frames of epoch the peer acknowledged
	resend     int            // unacked[resend:] were not yet sent on this connection
	sentData   uint32         // DATA frames sent in this epoch
	announce   bool           // the epoch changed after our HELLO: send EPOCH first
	encLost    bool           // restored from the spool: the peer's decoder context of epoch is gone with our encoder
	srtt       time.Duration  // see RTT

	// learned dictionaries (session_dict.go)
	encDict              compress.DictHash   // the dictionary epoch is primed with (zero: built-in)
	sendDicts, recvDicts []compress.Dict     // newest first (SetDicts)
	advertised           []compress.Dict     // recvDicts as our last HELLO named them
	peerHave             []compress.DictHash // what the peer's last HELLO named
	learn                bool                // keep acked stanzas for TakeAcked
	ackedData            [][]byte            // acked since the last TakeAcked
	decDict              compress.DictHash   // the dictionary peerEpoch is primed with
	decNoDict            bool                // ...which we do not have: DATA in it is refused

	// echoed ids (compress.IDLog): the ids our encoder sent, one
	// generation per epoch, and those our decoder received, one per peer
	// epoch. Our encoder echoes from recvIDs; our decoder resolves the
	// peer's echoes from sentIDs. attachLogs wires every new codec.
	sentIDs, recvIDs *compress.IDLog

	// receive side
	dec       *compress.Decoder
	peerEpoch uint32
	h         uint32 // DATA frames of peerEpoch received
	decLost   bool   // restored h with a fresh decoder: the peer must start a new epoch
	ackOwed   bool
	ackDue    time.Time
	// helloH and helloEpoch are the h and peer epoch our last HELLO
	// named: frames resent byte for byte carry that ack, not a newer one,
	// since the peer keeps in its log of sent values only what is within
	// reach of the acks it has read, and the frames' echoes were chosen
	// before.
	helloH     uint32
	helloEpoch uint32
	ackNow     bool

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
	// DictErrors counts epochs whose learned dictionary could not be used:
	// DATA came in an epoch the peer primed with one we do not have, or
	// a codec refused one.
	DictErrors uint64
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
	s := &Session{cfg: cfg, newID: newID, enc: enc, dec: dec, coalesce: map[string]*entry{}, loPairs: map[string]int{}, bySender: map[string]int{},
		peerMax: compress.MaxBatchBytes, sentIDs: compress.NewIDLog(), recvIDs: compress.NewIDLog()}
	s.attachLogs()
	// The peer echoes only within a window of what it received: our log
	// keeps everything it has not acknowledged, however far ahead we run.
	s.sentIDs.RetainUnacked()
	s.epoch = s.nextEpoch()
	s.sentIDs.Start(s.epoch)
	return s, nil
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
		s.sentIDs.Start(s.epoch)
		s.sentData = r.Acked + uint32(len(r.Frames))
		s.encLost = s.sentData > 0
		for _, ids := range r.Frames {
			var f sentFrame
			for _, id := range ids {
				if it, ok := byID[id]; ok {
					f.entries = append(f.entries, entry{id: id, Item: it})
					s.hold(&it, 1)
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
		s.recvIDs.Start(s.peerEpoch)
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

// askDue is when an idle link sends ACKREQ: Keepalive after we last
// received (and Keepalive/2 after we last sent) on the side whose epoch is
// the larger, Keepalive×5/4 on the other. Were both timers equal, both
// sides would ask every period (each one's timer runs from what it last
// received, and an answer arrives no earlier than the next question): two
// exchanges where one proves the link both ways. So one side asks and the
// other answers, unless the first stops asking.
func (s *Session) askDue() time.Time {
	ka := s.cfg.Keepalive
	if s.epoch < s.peerEpoch {
		ka += ka / 4
	}
	return maxTime(s.lastRecv.Add(ka), s.lastSent.Add(s.cfg.Keepalive/2))
}

// hold adds sign×len(it.Data) to the bytes held, overall and by its sender.
func (s *Session) hold(it *Item, sign int) {
	n := sign * len(it.Data)
	s.held += n
	if k := senderOf(it.Pair); k != "" {
		if v := s.bySender[k] + n; v != 0 {
			s.bySender[k] = v
		} else {
			delete(s.bySender, k)
		}
	}
}

// senderOf is the sender part of an Item.Pair ("bare from|bare to").
func senderOf(pair string) string {
	k, _, _ := strings.Cut(pair, "|")
	return k
}

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
			earlier(s.askDue())
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
