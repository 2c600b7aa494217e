package s2s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrDialbackInvalid means the authoritative server said the key is not
// valid (or the receiving server refused our db:result).
var ErrDialbackInvalid = errors.New("s2s: dialback key invalid")

// maxPendingVerify bounds the dialback verifications one inbound stream
// may have running at once (each is an outgoing connection).
const maxPendingVerify = 16

// handle processes one top-level element of an inbound stream.
func (in *inStream) handle(el element) error {
	s := in.srv
	if st := el.Stanza; st != nil {
		return in.stanza(st, el.Fault)
	}
	n := el.Node
	switch {
	case n.Name.Space == NSDialback && n.Name.Local == "result":
		if n.attr("type") != "" {
			return nil // an answer on an inbound stream: not ours to process
		}
		from, to := Domain(n.attr("from")), Domain(n.attr("to"))
		if from == "" || from != n.attr("from") {
			return serr(SErrImproperAddressing, "db:result from %q", n.attr("from"))
		}
		if s.cfg.RequireTLS && s.cfg.TLS != nil {
			in.mu.Lock()
			tlsDone := in.tls
			in.mu.Unlock()
			if !tlsDone {
				return lerr(SErrPolicyViolation, "tls-required", "dialback before STARTTLS")
			}
		}
		if s.cfg.Peers != nil && !s.cfg.Peers(from) {
			// Nobody could verify it: refused outright, not after a
			// dialback that must fail.
			return lerr(SErrInvalidFrom, "peer-domain", "db:result from %q, not a peer domain", from)
		}
		if to == "" || !s.cfg.Hosts(to) {
			s.event(Event{Kind: "in-refused", Local: n.attr("to"), Remote: from, Addr: in.addr, Reason: CondItemNotFound})
			return in.sess.send(in.sess.abort, dbResult(n.attr("to"), from, "", "error", CondItemNotFound))
		}
		p := pair{from: from, to: to}
		in.mu.Lock()
		busy, full := in.pending[p], len(in.pending) >= maxPendingVerify
		if !busy && !full {
			in.pending[p] = true
		}
		in.mu.Unlock()
		if busy {
			return nil
		}
		if full {
			s.event(Event{Kind: "in-refused", Local: to, Remote: from, Addr: in.addr, Reason: CondResourceConstraint})
			return in.sess.send(in.sess.abort, dbResult(to, from, "", "error", CondResourceConstraint))
		}
		key := n.Text
		in.sess.spawn(func(ctx context.Context) { in.verify(ctx, p, key) })
		return nil
	case n.Name.Space == NSDialback && n.Name.Local == "verify":
		if n.attr("type") != "" {
			return nil
		}
		ans := answerVerify(n, s.cfg.Secret, s.cfg.Hosts)
		s.event(Event{Kind: "verify-answer", Local: n.attr("to"), Remote: n.attr("from"), Addr: in.addr,
			Reason: map[bool]string{true: "valid", false: "invalid"}[bytes.Contains(ans, []byte("type='valid'"))]})
		return in.sess.send(in.sess.abort, ans)
	case n.Name.Space == NSStream && n.Name.Local == "error":
		s.log.Info("s2s: peer sent stream error", "addr", in.addr, "err", peerStreamError(n))
		return nil // its </stream:stream> follows
	case n.Name.Space == NSTLS:
		return serr(SErrPolicyViolation, "STARTTLS after negotiation")
	default:
		return serr(SErrUnsupportedStanzaType, "<%s xmlns=%q>", n.Name.Local, n.Name.Space)
	}
}

// stanza checks one inbound stanza's addresses and delivers it. A stanza
// the reader refused on its own (f set: over a limit, or not
// namespace-well-formed XML) is checked the same way and then refused:
// counted, and bounced to its sender with f.Cond (RFC 6120 §8.3) unless it
// is an error itself; the stream goes on.
func (in *inStream) stanza(st *Stanza, f *fault) error {
	s := in.srv
	if f == nil && !bytes.HasPrefix(st.Raw, []byte("<"+st.Name)) {
		return serr(SErrUnsupportedStanzaType, "prefixed stanza element")
	}
	in.mu.Lock()
	anyVerified := len(in.verified) > 0
	in.mu.Unlock()
	if !anyVerified {
		return serr(SErrNotAuthorized, "stanza before dialback")
	}
	if st.To == "" || st.From == "" {
		return serr(SErrImproperAddressing, "stanza without from or to")
	}
	from := Domain(st.From)
	if from == "" {
		return serr(SErrInvalidFrom, "malformed from %q", st.From)
	}
	if err := in.throttle(); err != nil {
		return err
	}
	to := Domain(st.To)
	if to == "" {
		// A malformed recipient is the stanza's fault, not the stream's:
		// bounce it with jid-malformed (RFC 6120 §8.3.3.8) to its
		// sender, if that sender is authenticated on this stream.
		ours := in.verifiedFor(from)
		if ours == "" {
			return serr(SErrInvalidFrom, "from %q not verified", st.From)
		}
		s.event(Event{Kind: "in-refused", Local: ours, Remote: from, Addr: in.addr, Reason: CondJIDMalformed})
		bad := *st
		if f != nil {
			bad.Raw = nil // no payload: it was refused too
		}
		bad.To = ours // the reply comes from our domain: the malformed JID cannot be an address
		if reply, ok := ErrorReply(bad, CondJIDMalformed); ok && s.cfg.Reject != nil {
			s.cfg.Reject(reply)
		}
		return nil
	}
	if !s.cfg.Hosts(to) {
		return serr(SErrHostUnknown, "to %q", st.To)
	}
	in.mu.Lock()
	ok := in.verified[pair{from: from, to: to}]
	in.mu.Unlock()
	if !ok {
		return serr(SErrInvalidFrom, "from %q to %q not verified", st.From, st.To)
	}
	if f != nil {
		s.log.Debug("s2s: stanza refused", "addr", in.addr, "from", st.From, "to", st.To, "id", st.ID, "err", f.Text)
		s.event(Event{Kind: "in-refused", Local: to, Remote: from, Addr: in.addr, Reason: f.Cond, Detail: f.Detail})
		head := Stanza{Name: st.Name, From: st.From, To: st.To, Type: st.Type, ID: st.ID} // no payload: it is what was refused
		if reply, ok := ErrorReply(head, f.Cond); ok && s.cfg.Reject != nil {
			s.cfg.Reject(reply)
		}
		return nil
	}
	s.cfg.Deliver(*st)
	return nil
}

// verifiedFor returns one of our domains for which domain is
// authenticated on this stream ("" if none; the least, for determinism).
func (in *inStream) verifiedFor(domain string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	ours := ""
	for p := range in.verified {
		if p.from == domain && (ours == "" || p.to < ours) {
			ours = p.to
		}
	}
	return ours
}

// throttle takes one token from the stream's stanza-rate bucket, waiting
// for it if the bucket is empty (Limits.StanzaRate). Waiting stops reading
// the stream, so TCP slows the sender down. It fails only when the stream
// ends meanwhile.
func (in *inStream) throttle() error {
	lim := in.srv.lim
	if lim.StanzaRate <= 0 {
		return nil
	}
	now := time.Now()
	burst := float64(lim.StanzaBurst)
	if in.lastFill.IsZero() {
		in.tokens = burst
	} else {
		in.tokens = min(burst, in.tokens+now.Sub(in.lastFill).Seconds()*lim.StanzaRate)
	}
	in.lastFill = now
	if in.tokens >= 1 {
		in.tokens--
		return nil
	}
	if !in.throttled {
		in.throttled = true
		in.srv.event(Event{Kind: "limit", Addr: in.addr, Reason: "throttled", Detail: "stanza-rate"})
	}
	wait := time.Duration((1 - in.tokens) / lim.StanzaRate * float64(time.Second))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-in.sess.abort.Done():
		return in.sess.abort.Err()
	}
	in.tokens, in.lastFill = 0, time.Now()
	return nil
}

// verify checks a db:result key with the originating domain's
// authoritative server and answers the initiator.
func (in *inStream) verify(ctx context.Context, p pair, key string) {
	s := in.srv
	valid, err := s.verifyKey(ctx, p.from, p.to, in.id, key)
	in.mu.Lock()
	delete(in.pending, p)
	if valid {
		in.verified[p] = true
	}
	in.mu.Unlock()
	var ans []byte
	switch {
	case err != nil:
		s.log.Info("s2s: dialback verification failed", "from", p.from, "to", p.to, "err", err)
		s.event(Event{Kind: "in-refused", Local: p.to, Remote: p.from, Addr: in.addr, Reason: err.Error()})
		ans = dbResult(p.to, p.from, "", "error", CondRemoteServerNotFound)
	case valid:
		s.event(Event{Kind: "in-auth", Local: p.to, Remote: p.from, Addr: in.addr})
		ans = dbResult(p.to, p.from, "", "valid", "")
	default:
		s.event(Event{Kind: "in-refused", Local: p.to, Remote: p.from, Addr: in.addr, Reason: "invalid"})
		ans = dbResult(p.to, p.from, "", "invalid", "")
	}
	_ = in.sess.send(ctx, ans)
}

// verifyKey asks the authoritative server of originating whether key is
// right for the stream id (db:verify on a new connection).
func (s *Server) verifyKey(ctx context.Context, originating, receiving, id, key string) (bool, error) {
	if s.cfg.Resolve == nil {
		return false, errors.New("s2s: no resolver")
	}
	addr, err := s.cfg.Resolve(originating)
	if err != nil {
		return false, fmt.Errorf("s2s: resolve %s: %w", originating, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.lim.ConnectTimeout)
	defer cancel()
	conn, err := s.cfg.Dial.dial(ctx, addr)
	if err != nil {
		return false, verifyDialError(originating, addr, err)
	}
	defer conn.Close()
	raw := conn
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(s.lim.ConnectTimeout))
	conn, rd, _, _, err := initiate(conn, receiving, originating, initOpts{TLS: s.cfg.VerifyTLS, RequireTLS: s.cfg.RequireTLS}, s.lim)
	if err != nil {
		return false, err
	}
	defer closeRaw(conn)
	if _, err := conn.Write(dbVerify(receiving, originating, id, key, "")); err != nil {
		return false, fmt.Errorf("s2s: write db:verify to %s: %w", originating, err)
	}
	for {
		el, err := rd.next()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return false, fmt.Errorf("s2s: db:verify answer from %s: %w", originating, err)
		}
		n := el.Node
		if n == nil {
			continue
		}
		if n.Name.Space == NSStream && n.Name.Local == "error" {
			return false, fmt.Errorf("s2s: db:verify to %s: %w", originating, peerStreamError(n))
		}
		if n.Name.Space != NSDialback || n.Name.Local != "verify" || n.attr("id") != id {
			continue
		}
		_, _ = conn.Write([]byte(streamClose))
		switch n.attr("type") {
		case "valid":
			return true, nil
		case "invalid":
			return false, nil
		default:
			return false, fmt.Errorf("s2s: db:verify answer from %s: type %q", originating, n.attr("type"))
		}
	}
}
