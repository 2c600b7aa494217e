package link

import (
	"slices"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// Learned dictionaries (see "Learned dictionaries" in the package doc):
// which one primes an epoch, on each end.

// SetDicts gives the session the learned dictionaries, newest first: send
// for its encoder, recv for its decoder (their names go in the next
// HELLO). They are used from the next epoch on; an epoch keeps the
// dictionary it started with.
func (s *Session) SetDicts(send, recv []compress.Dict) {
	s.sendDicts = slices.Clone(send)
	s.recvDicts = slices.Clone(recv[:min(len(recv), MaxHelloDicts)])
}

// Dicts returns the dictionaries the current epochs are primed with: ours
// (enc) and the peer's (dec); zero is the built-in one.
func (s *Session) Dicts() (enc, dec compress.DictHash) { return s.encDict, s.decDict }

// CollectAcked makes the session keep the stanzas the peer acknowledges,
// in order, for TakeAcked (the learner's sample of what this side sent).
func (s *Session) CollectAcked() { s.learn = true }

// TakeAcked returns the stanzas acknowledged since the last call, in the
// order they were sent (see CollectAcked).
func (s *Session) TakeAcked() [][]byte {
	a := s.ackedData
	s.ackedData = nil
	return a
}

// chooseDict returns the dictionary a new epoch starts with: the newest of
// ours that the peer's last HELLO named, else the built-in one (zero).
func (s *Session) chooseDict() compress.Dict {
	for _, d := range s.sendDicts {
		if slices.Contains(s.peerHave, d.Hash) {
			return d
		}
	}
	return compress.Dict{}
}

// helloDicts returns the names our HELLO lists, and remembers the
// dictionaries behind them: the peer may name any of them in the epoch it
// starts after reading this HELLO.
func (s *Session) helloDicts() []compress.DictHash {
	s.advertised = s.recvDicts
	var names []compress.DictHash
	for _, d := range s.advertised {
		names = append(names, d.Hash)
	}
	return names
}

// primeEncoder starts the encoder of a new epoch with dictionary d (zero:
// the built-in one). If the encoder cannot take d (cannot happen with a
// dictionary TrainDict built), the epoch uses the built-in one, counted in
// DictErrors.
func (s *Session) primeEncoder(d compress.Dict) {
	s.sentIDs.Start(s.epoch)
	if d.Hash == s.encDict {
		s.enc.Reset()
		return
	}
	opts := slices.Clip(s.cfg.Codec)
	if !d.Hash.IsZero() {
		opts = append(opts, compress.WithDict(d.Data))
	}
	enc, err := compress.NewEncoder(opts...)
	if err != nil {
		s.DictErrors++
		d = compress.Dict{}
		if enc, err = compress.NewEncoder(s.cfg.Codec...); err != nil {
			s.enc.Reset() // the encoder NewSession made works: keep it
			return
		}
	}
	enc.SetMaxDecoded(s.peerMax)
	s.enc, s.encDict = enc, d.Hash
	s.attachLogs()
}

// attachLogs wires the session's codecs to its id logs (compress.IDLog):
// the encoder logs what it sends and echoes what the decoder received; the
// decoder logs what it receives and resolves echoes from what the encoder
// sent.
func (s *Session) attachLogs() {
	s.enc.LogIDs(s.sentIDs)
	s.enc.EchoIDs(s.recvIDs)
	s.dec.LogIDs(s.recvIDs)
	s.dec.EchoIDs(s.sentIDs)
}

// primeDecoder starts the decoder of the peer's new epoch with the
// dictionary named h. If we do not have it (or cannot load it), DATA in
// that epoch is refused (counted in DictErrors then: a peer that restarted
// may name in its HELLO an epoch it will not use, with a dictionary we
// have dropped since) and our next HELLO reports the decoder lost, so the
// peer starts another epoch, with a dictionary our HELLO names.
func (s *Session) primeDecoder(h compress.DictHash) {
	if h == s.decDict && !s.decNoDict {
		s.dec.Reset()
		return
	}
	s.decNoDict = false
	opts := append(slices.Clip(s.cfg.Codec), compress.WithMaxDecoded(s.cfg.MaxDecoded))
	if !h.IsZero() {
		d, ok := s.recvDict(h)
		if !ok {
			s.decNoDict, s.decDict = true, h
			s.dec.Reset()
			return
		}
		opts = append(opts, compress.WithDict(d.Data))
	}
	dec, err := compress.NewDecoder(opts...)
	if err != nil {
		s.decNoDict, s.decDict = true, h
		s.dec.Reset()
		return
	}
	s.dec.Close()
	s.dec, s.decDict = dec, h
	s.attachLogs()
}

// recvDict finds a dictionary of ours by name: among those our last HELLO
// named, or those we have now.
func (s *Session) recvDict(h compress.DictHash) (compress.Dict, bool) {
	for _, l := range [...][]compress.Dict{s.advertised, s.recvDicts} {
		for _, d := range l {
			if d.Hash == h {
				return d, true
			}
		}
	}
	return compress.Dict{}, false
}

// reprime starts a new epoch before anything was sent in the current one
// when, now that the peer's HELLO says which dictionaries it has, another
// dictionary than the current epoch's should prime it (after a restart,
// the first epoch starts with the built-in one: the peer's dictionaries are
// not known yet).
func (s *Session) reprime() {
	d := s.chooseDict()
	if d.Hash == s.encDict {
		return
	}
	s.epoch = s.nextEpoch()
	s.announce = true
	s.EpochChanges++
	s.primeEncoder(d)
}
