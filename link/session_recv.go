package link

import (
	"fmt"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

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
		e, dict, err := parseEpoch(f.Payload)
		if err != nil {
			return nil, err
		}
		if !afterHello || s.hello {
			return nil, fmt.Errorf("%w: EPOCH %d not right after the HELLOs", ErrProtocol, e)
		}
		if e == s.peerEpoch {
			if s.h == 0 {
				// The HELLO just read named this epoch already: a peer
				// before the fix of Poll announces it again. Nothing to
				// do but take the dictionary it names.
				if dict != s.decDict {
					s.primeDecoder(dict)
				}
				return nil, nil
			}
			return nil, fmt.Errorf("%w: bad EPOCH: %d is the epoch in progress", ErrProtocol, e)
		}
		s.newPeerEpoch(e, dict)
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
		if s.decNoDict {
			// Our next HELLO reports the decoder lost: the peer starts
			// another epoch, with a dictionary that HELLO names.
			s.decLost = true
			s.DictErrors++
			return nil, fmt.Errorf("%w: DATA in epoch %d, primed with dictionary %s, which we do not have", ErrProtocol, s.peerEpoch, s.decDict)
		}
		batch, err := s.dec.Decode(block)
		if err != nil {
			// The decoder's state is gone with this block: a plain resume
			// would send the same bytes into the same failure on every
			// reconnect. Our next HELLO reports the decoder lost, so the
			// peer starts another epoch.
			s.decLost = true
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

// unackedEchoes reports whether a frame not yet acknowledged echoes what
// the peer sent: a peer that lost its log cannot read it again as it is.
func (s *Session) unackedEchoes() bool {
	for _, f := range s.unacked {
		if f.echoes {
			return true
		}
	}
	return false
}

// echoesReachable reports whether every unacked frame's echoes are still
// in the peer's log once it has read our HELLO: the peer keeps the entries
// from echoWindow before what we acknowledged (our received count, which
// is what our HELLO's h stands for), so a frame that echoes an older entry
// (it was encoded long ago, and we received much since) is encoded again
// in a new epoch instead of resumed. Our acks stay at the HELLO's h while
// frames are resent (Poll), so the peer's log does not move meanwhile.
func (s *Session) echoesReachable() bool {
	n, epoch := s.recvIDs.Len()
	for _, f := range s.unacked {
		if f.echoes && (f.echoEpoch != epoch || f.echoMin+compress.EchoWindow < n) {
			return false
		}
	}
	return true
}

// newPeerEpoch starts decoding the peer's epoch e, primed with the
// dictionary named dict.
func (s *Session) newPeerEpoch(e uint32, dict compress.DictHash) {
	s.recvIDs.Start(e)
	s.primeDecoder(dict)
	s.peerEpoch, s.h, s.decLost = e, 0, false
	s.op(Op{Kind: OpRecv, Epoch: e})
}

func (s *Session) onHello(now time.Time, h Hello) {
	// What the peer's decoder takes from one frame: every batch from now
	// on keeps to it (a peer restarted with a lower bound has lost its
	// decoder, so what it has not acked is encoded again below).
	s.peerMax = int(h.MaxDecoded)
	s.enc.SetMaxDecoded(s.peerMax)
	// Receive side: a new epoch of the peer means a fresh decoder (and
	// one not begun yet may change its dictionary: the peer restarted).
	s.peerHave = h.Dicts
	if h.Epoch != s.peerEpoch {
		s.newPeerEpoch(h.Epoch, h.Dict)
	} else if s.h == 0 && !s.decLost && h.Dict != s.decDict {
		s.primeDecoder(h.Dict)
	}
	peerLostLog := h.Flags&HelloEncoderLost != 0
	if peerLostLog {
		// The peer lost what it sent in its epoch: echo nothing of it
		// until its new epoch starts (epoch 0 is never one).
		s.recvIDs.Start(0)
	}
	// Send side.
	if h.PeerEpoch == s.epoch && s.ackable(h.H) {
		s.dropAcked(h.H)
		if h.Flags&HelloDecoderLost == 0 && !s.encLost && !(peerLostLog && s.unackedEchoes()) && s.echoesReachable() {
			s.resend = 0 // every remaining unacked frame goes again, as it was
			if len(s.unacked) > 0 {
				s.Resumes++
			}
			if s.sentData == 0 {
				s.reprime()
			}
			return
		}
	}
	if s.sentData == 0 {
		s.reprime() // nothing sent in this epoch yet: the peer starts it with us
		return
	}
	// The peer lost our stream (or we lost our encoder): new epoch,
	// re-encode what it never acked, ahead of the queue and in the order it
	// was sent, whatever its class (a pair's later stanzas may be queued).
	var again []*entry
	for _, f := range s.unacked {
		for i := range f.entries {
			e := f.entries[i]
			s.hold(&e.Item, -1)
			again = append(again, &e)
		}
	}
	s.unacked, s.acked, s.resend = nil, 0, 0
	s.EpochChanges++
	s.epoch = s.nextEpoch()
	s.sentData = 0
	s.announce = true
	s.encLost = false
	s.primeEncoder(s.chooseDict())
	if len(again) > 0 {
		for _, e := range again {
			s.queueBytes += len(e.Data)
			s.hold(&e.Item, 1)
			s.noteExpiry(e.Expires)
		}
		s.hi = append(again, s.hi...)
		s.firstQueue, s.firstHi = time.Time{}, time.Time{} // re-encoded stanzas go at once
	}
	s.expire(now)
}
