package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

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
		if s.encLost {
			flags |= HelloEncoderLost
		}
		s.helloH, s.helloEpoch = s.h, s.peerEpoch
		h := hello(flags, s.epoch, s.peerEpoch, s.h, s.cfg.MaxDecoded)
		h.Dict, h.Dicts = s.encDict, s.helloDicts()
		out = s.frame(out, FrameHello, h.append(nil))
	}
	if !s.gotHello {
		return out
	}
	if s.announce {
		s.announce = false
		out = s.frame(out, FrameEpoch, appendEpoch(nil, s.epoch, s.encDict))
	}
	// Resumption: unacked frames the peer has not seen, byte for byte.
	if s.resend < len(s.unacked) {
		f := s.unacked[s.resend]
		s.unacked[s.resend].sent = time.Time{}
		ack := s.resendAck()
		s.resend++
		s.Out.Retransmitted += uint64(len(f.block))
		return s.dataAck(out, f.block, ack)
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
	if !s.askedAck && !now.Before(s.askDue()) {
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
		s.hold(&ents[i].Item, 1) // unqueue took it off; it stays held until acked
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
	logged, _ := s.sentIDs.Len()
	echoMin, echoEpoch, echoes := s.enc.LastEchoMin()
	s.unacked = append(s.unacked, sentFrame{block: append([]byte(nil), block...), entries: ents, queued: queued, sent: now,
		logged: logged, echoes: echoes, echoMin: echoMin, echoEpoch: echoEpoch})
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
	s.hold(&e.Item, -1)
	s.op(Op{Kind: OpDrop, IDs: []uint64{e.id}})
	s.Drops.Unencodable++
	s.rejected = append(s.rejected, Rejected{Item: e.Item, Err: err})
}

func (s *Session) data(out, block []byte) []byte { return s.dataAck(out, block, s.h) }

// dataAck is data with the given ack (a resent frame carries the HELLO's);
// an ack older than s.h leaves the newer one owed.
func (s *Session) dataAck(out, block []byte, ack uint32) []byte {
	p := appendAck(make([]byte, 0, len(block)+5), ack, s.peerEpoch)
	p = append(p, block...)
	if ack == s.h {
		s.ackOwed, s.ackNow = false, false
	}
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
	if f := s.unacked[n-1]; f.logged > 0 {
		s.sentIDs.Acked(s.epoch, f.logged)
	}
	for _, f := range s.unacked[:n] {
		for i := range f.entries {
			e := &f.entries[i]
			s.hold(&e.Item, -1)
			if s.learn {
				s.ackedData = append(s.ackedData, e.Data)
			}
		}
	}
	clear(s.unacked[:n])
	s.unacked = s.unacked[n:]
	s.resend = max(0, s.resend-n)
	s.acked = a
	s.op(Op{Kind: OpAck, Epoch: s.epoch, N: a})
}

// resendAck is the ack a frame resent byte for byte carries: our HELLO's
// while a frame still to be resent (this one included) echoes what the
// peer sent, since a newer ack lets the peer's log of sent values drop
// what it echoes; the newest once none does (acks never go back).
func (s *Session) resendAck() uint32 {
	if s.peerEpoch == s.helloEpoch {
		for _, f := range s.unacked[s.resend:] {
			if f.echoes {
				return s.helloH
			}
		}
	}
	return s.h
}
