package link

import (
	"slices"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

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
	// The sender's share first, before a coalesced presence is replaced or
	// removed: a refused stanza must leave the queue as it was. The queued
	// presence it would replace counts as freed.
	if k := senderOf(it.Pair); k != "" {
		free := 0
		if old := s.coalesce[it.Coalesce]; it.Class.Low() && it.Coalesce != "" && old != nil && senderOf(old.Pair) == k {
			free = len(old.Data)
		}
		if s.bySender[k]-free+len(it.Data) > s.cfg.MaxSenderBytes {
			s.Drops.SenderFull++
			return ErrSenderFull
		}
	}
	if it.Class.Low() && it.Coalesce != "" {
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
				s.hold(&old.Item, -1) // the same Pair: the same sender
				old.id, old.Item = id, it
				s.hold(&old.Item, 1)
				s.queueBytes += d
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
	if e.Class.Low() {
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
	s.hold(&e.Item, 1)
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
	s.hold(&e.Item, -1)
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
				if e.Class.Low() {
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
