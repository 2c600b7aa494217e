package s2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// PoolConfig configures a Pool (the initiating side of S2S streams).
type PoolConfig struct {
	Resolve func(domain string) (addr string, err error) // target domain -> host:port (no DNS/SRV: addresses are configured)
	Secret  string                                       // dialback secret; the receiving server verifies our keys with whoever holds it (our Server)
	TLS     *tls.Config                                  // client side; if set and the peer offers STARTTLS, use it (client certificate and SASL EXTERNAL: auth.go)
	Limits  Limits
	// Bounce receives each stanza that could not be delivered (connect
	// failed, dialback refused, queue full, stream died before it was
	// written…) with a stanza error condition. It may be called from Send.
	Bounce func(st Stanza, cond string)

	// Delivered, if set, receives each stanza once it was written to its
	// stream (so the caller can count what reached local servers). It is
	// called from the stream's writer and must not block.
	Delivered func(st Stanza)
	// ReplyBytes bounds the bytes of replies (see Reply) queued on one
	// stream (default 4 MiB); Limits.QueueLimit bounds their number.
	ReplyBytes int

	Logger *slog.Logger
	Events func(Event)
	Dial   Dialer // nil: net.Dialer
	// RequireTLS fails a stream whose peer offers no STARTTLS.
	RequireTLS bool
}

// connectSlack multiplies the share of replies a stream may queue while it
// is still being opened: the local server may send the dialback
// verification for it on the very inbound stream whose reader Reply would
// make wait (Prosody routes db:verify over its existing stream to us).
const connectSlack = 4

// Pool keeps one outgoing stream per (from-domain, to-domain) pair.
type Pool struct {
	cfg    PoolConfig
	lim    Limits
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the streams' goroutines

	mu      sync.Mutex // guards the following fields and every outStream's fields marked so
	streams map[pair]*outStream
	closed  bool
	waiting int        // Reply calls waiting for room
	waits   uint64     // times a Reply call waited
	room    *sync.Cond // on mu: a stream's replies drained, a stream ended, or the pool closed
}

// outStream is one outgoing stream and its queue. Stanzas from Send and
// replies from Reply share one FIFO (their order is kept) but have
// separate bounds, so neither can take the other's room.
type outStream struct {
	p      *Pool
	key    pair
	notify chan struct{} // capacity 1: something was queued

	// Guarded by p.mu:
	queue       []queued
	sent        int  // stanzas from Send in queue
	replies     int  // replies in queue
	replyBytes  int  // their bytes
	established bool // dialback done: the stream drains by itself
	dead        bool // accepts no more stanzas
}

// queued is one stanza in an outStream's queue.
type queued struct {
	st    Stanza
	reply bool // queued by Reply
}

// NewPool returns a Pool for cfg.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Bounce == nil {
		cfg.Bounce = func(Stanza, string) {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplyBytes <= 0 {
		cfg.ReplyBytes = 4 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{cfg: cfg, lim: cfg.Limits.withDefaults(), log: log, ctx: ctx, cancel: cancel, streams: map[pair]*outStream{}}
	p.room = sync.NewCond(&p.mu)
	return p
}

func (p *Pool) event(e Event) {
	if p.cfg.Events != nil {
		p.cfg.Events(e)
	}
}

func (p *Pool) bounce(st Stanza, cond string) {
	p.event(Event{Kind: EventBounce, Local: Domain(st.From), Remote: Domain(st.To), Reason: cond, Bytes: len(st.Raw)})
	p.cfg.Bounce(st, cond)
}

// Send queues st on the outgoing stream for (Domain(st.From),
// Domain(st.To)), opening and authenticating it if needed. It does not
// block on the network. Stanzas keep their order per stream. Over
// Limits.QueueLimit stanzas queued by Send on the stream, or after Close,
// st is bounced at once.
func (p *Pool) Send(st Stanza) {
	k := pair{from: Domain(st.From), to: Domain(st.To)}
	if k.from == "" || k.to == "" {
		p.bounce(st, CondJIDMalformed)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.bounce(st, CondServiceUnavailable)
		return
	}
	o := p.stream(k)
	if o.sent >= p.lim.QueueLimit {
		p.mu.Unlock()
		p.bounce(st, CondResourceConstraint)
		return
	}
	o.push(queued{st: st})
	p.mu.Unlock()
	o.poke()
}

// Reply queues st like Send, but st is a reply the caller made to a stanza
// a local server sent (a bounce), so it must not be bounced in turn: when
// the stream's replies fill their share (Limits.QueueLimit stanzas or
// PoolConfig.ReplyBytes bytes; connectSlack times that while the stream is
// being opened), Reply waits for room instead. Called by the reader of the
// inbound stream a flood comes from, it stops that reader, and TCP pushes
// back on the flooding server. Replies have a share of their own: they
// never take the room of stanzas queued by Send (another user's, from the
// link) on the same stream. After Close, or without a valid address, st
// is bounced at once; so is every reply of a stream that fails.
func (p *Pool) Reply(st Stanza) {
	k := pair{from: Domain(st.From), to: Domain(st.To)}
	if k.from == "" || k.to == "" {
		p.bounce(st, CondJIDMalformed)
		return
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			p.bounce(st, CondServiceUnavailable)
			return
		}
		o := p.stream(k)
		if o.roomForReply(len(st.Raw)) {
			o.push(queued{st: st, reply: true})
			p.mu.Unlock()
			o.poke()
			return
		}
		p.waiting++
		p.waits++
		p.room.Wait()
		p.waiting--
	}
}

// PoolStats are a Pool's queue figures.
type PoolStats struct {
	Queued     int    // stanzas queued by Send on all streams
	Replies    int    // replies queued by Reply on all streams
	ReplyWaits uint64 // times a Reply waited for room (its caller, a reader, stopped reading)
}

// Stats returns the pool's queue figures.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PoolStats{ReplyWaits: p.waits}
	for _, o := range p.streams {
		s.Queued += o.sent
		s.Replies += o.replies
	}
	return s
}

// stream returns the live stream for k, starting one if needed; p.mu is held.
func (p *Pool) stream(k pair) *outStream {
	o := p.streams[k]
	if o == nil {
		o = &outStream{p: p, key: k, notify: make(chan struct{}, 1)}
		p.streams[k] = o
		p.wg.Add(1)
		go o.run()
	}
	return o
}

// roomForReply says whether a reply of n bytes fits; p.mu is held. One
// reply always fits, whatever its size.
func (o *outStream) roomForReply(n int) bool {
	lim, bytes := o.p.lim.QueueLimit, o.p.cfg.ReplyBytes
	if !o.established {
		lim, bytes = lim*connectSlack, bytes*connectSlack
	}
	return o.replies == 0 || (o.replies < lim && o.replyBytes+n <= bytes)
}

// push appends q to the queue; p.mu is held.
func (o *outStream) push(q queued) {
	o.queue = append(o.queue, q)
	if q.reply {
		o.replies++
		o.replyBytes += len(q.st.Raw)
	} else {
		o.sent++
	}
}

// poke tells the stream's writer something was queued.
func (o *outStream) poke() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Close ends every outgoing stream cleanly (queued stanzas of authenticated
// streams are written first) and waits for their goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.room.Broadcast()
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

// pop takes the next queued stanza. Once the stream's replies have
// drained to half their share, Reply calls waiting for room are woken (not
// at each pop: a flooding reader then reads in bursts, not stanza by
// stanza).
func (o *outStream) pop() (Stanza, bool) {
	p := o.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(o.queue) == 0 {
		return Stanza{}, false
	}
	q := o.queue[0]
	o.queue[0] = queued{}
	o.queue = o.queue[1:]
	if len(o.queue) == 0 {
		o.queue = nil
	}
	if !q.reply {
		o.sent--
		return q.st, true
	}
	o.replies--
	o.replyBytes -= len(q.st.Raw)
	if p.waiting > 0 && (o.replies <= p.lim.QueueLimit/2 || o.replyBytes <= p.cfg.ReplyBytes/2) {
		p.room.Broadcast()
	}
	return q.st, true
}

// retire takes o out of the pool and returns what was still queued.
func (o *outStream) retire() []Stanza {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	o.dead = true
	if o.p.streams[o.key] == o {
		delete(o.p.streams, o.key)
	}
	rest := make([]Stanza, len(o.queue))
	for i, q := range o.queue {
		rest[i] = q.st
	}
	o.queue, o.sent, o.replies, o.replyBytes = nil, 0, 0, 0
	o.p.room.Broadcast()
	return rest
}

// idleClose retires o if nothing is queued.
func (o *outStream) idleClose() bool {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if len(o.queue) > 0 {
		return false
	}
	o.dead = true
	if o.p.streams[o.key] == o {
		delete(o.p.streams, o.key)
	}
	o.p.room.Broadcast()
	return true
}

func (o *outStream) run() {
	p := o.p
	defer p.wg.Done()
	addr, err := o.serve()
	rest := o.retire()
	ev := Event{Kind: EventOutClose, Local: o.key.from, Remote: o.key.to, Addr: addr}
	if err != nil {
		ev.Reason = err.Error()
		p.log.Info("s2s: outgoing stream", "from", o.key.from, "to", o.key.to, "err", err)
	}
	p.event(ev)
	cond := CondRemoteServerNotFound
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		cond = CondRemoteServerTimeout
	}
	for _, st := range rest {
		p.bounce(st, cond)
	}
}

// authError marks failures before the stream was authenticated.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// serve connects, authenticates and runs the stream.
func (o *outStream) serve() (string, error) {
	p := o.p
	fail := func(addr string, err error) (string, error) {
		p.event(Event{Kind: EventOutFail, Local: o.key.from, Remote: o.key.to, Addr: addr, Reason: err.Error()})
		return addr, &authError{err}
	}
	if p.cfg.Resolve == nil {
		return fail("", errors.New("s2s: no resolver"))
	}
	addr, err := p.cfg.Resolve(o.key.to)
	if err != nil {
		return fail("", fmt.Errorf("s2s: resolve %s: %w", o.key.to, err))
	}
	conn, rd, err := o.connect(addr)
	if err != nil {
		return fail(addr, err)
	}
	ev := Event{Kind: EventOutAuth, Local: o.key.from, Remote: o.key.to, Addr: addr}
	if _, ok := conn.(*tls.Conn); ok {
		ev.Reason = "tls"
	}
	p.event(ev)
	p.mu.Lock()
	o.established = true
	p.mu.Unlock()
	log := p.log.With("from", o.key.from, "to", o.key.to)
	sess := newSession(conn, rd, p.lim, log)
	sess.notify = o.notify
	// The writer pulls the next stanza only after writing the previous one
	// (or calls writeFail): a pull means the one before it was delivered.
	var pulled *Stanza
	sess.pull = func() (Stanza, bool) {
		if pulled != nil && p.cfg.Delivered != nil {
			p.cfg.Delivered(*pulled)
		}
		st, ok := o.pop()
		pulled = nil
		if ok {
			pulled = &st
		}
		return st, ok
	}
	sess.writeFail = func(st Stanza, err error) {
		pulled = nil
		p.bounce(st, CondRemoteServerNotFound)
	}
	sess.idleClose = o.idleClose
	sess.handle = func(el element) error {
		n := el.Node
		switch {
		case n == nil:
			log.Debug("s2s: stanza on an outgoing stream ignored", "name", el.Stanza.Name)
		case n.Name.Space == NSDialback && n.Name.Local == "verify" && n.attr("type") == "":
			hosts := func(d string) bool { return d == o.key.from }
			return sess.send(sess.abort, answerVerify(n, p.cfg.Secret, hosts))
		case n.Name.Space == NSStream && n.Name.Local == "error":
			log.Info("s2s: peer sent stream error", "err", peerStreamError(n))
		}
		return nil
	}
	// Stanzas may have been queued while connecting.
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return addr, sess.run(p.ctx, nil)
}

// connect dials addr, opens the stream and runs dialback.
func (o *outStream) connect(addr string) (_ net.Conn, _ *xmlReader, err error) {
	p := o.p
	ctx, cancel := context.WithTimeout(p.ctx, p.lim.ConnectTimeout)
	defer cancel()
	conn, err := p.cfg.Dial.dial(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("s2s: dial %s (%s): %w", o.key.to, addr, err)
	}
	raw := conn // closing it also ends a TLS connection on top
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer func() {
		if !stop() && err == nil {
			err = o.ctxErr(ctx, errors.New("s2s: connect interrupted"))
		}
		if err != nil {
			raw.Close()
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(p.lim.ConnectTimeout))
	p.event(Event{Kind: "out-open", Local: o.key.from, Remote: o.key.to, Addr: addr})
	conn, rd, id, authed, err := initiate(conn, o.key.from, o.key.to, initOpts{TLS: p.cfg.TLS, RequireTLS: p.cfg.RequireTLS, SASL: true}, p.lim)
	if err != nil {
		return nil, nil, o.ctxErr(ctx, err)
	}
	if authed { // SASL EXTERNAL (auth.go)
		_ = conn.SetDeadline(time.Time{})
		return conn, rd, nil
	}
	key := DialbackKey(p.cfg.Secret, o.key.to, o.key.from, id)
	if _, err := conn.Write(dbResult(o.key.from, o.key.to, key, "", "")); err != nil {
		return nil, nil, o.ctxErr(ctx, fmt.Errorf("s2s: write db:result to %s: %w", o.key.to, err))
	}
	for {
		el, err := rd.next()
		if err != nil {
			return nil, nil, o.ctxErr(ctx, fmt.Errorf("s2s: dialback with %s: %w", o.key.to, err))
		}
		n := el.Node
		if n == nil {
			continue
		}
		switch {
		case n.Name.Space == NSStream && n.Name.Local == "error":
			return nil, nil, fmt.Errorf("s2s: dialback with %s: %w", o.key.to, peerStreamError(n))
		case n.Name.Space == NSDialback && n.Name.Local == "verify" && n.attr("type") == "":
			hosts := func(d string) bool { return d == o.key.from }
			if _, err := conn.Write(answerVerify(n, p.cfg.Secret, hosts)); err != nil {
				return nil, nil, o.ctxErr(ctx, fmt.Errorf("s2s: write to %s: %w", o.key.to, err))
			}
		case n.Name.Space == NSDialback && n.Name.Local == "result" &&
			Domain(n.attr("from")) == o.key.to && Domain(n.attr("to")) == o.key.from:
			switch n.attr("type") {
			case "valid":
				_ = conn.SetDeadline(time.Time{})
				return conn, rd, nil
			case "error":
				_, _ = conn.Write([]byte(streamClose))
				return nil, nil, dialbackRefused(o.key.from, o.key.to, n)
			default:
				_, _ = conn.Write([]byte(streamClose))
				return nil, nil, fmt.Errorf("s2s: dialback with %s: %w", o.key.to, ErrDialbackInvalid)
			}
		}
	}
}

// ctxErr prefers the context's error (timeout, Close) over the I/O error it caused.
func (o *outStream) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// dbErrorCond is the stanza error condition inside a type='error' db:result.
func dbErrorCond(n *node) string {
	for _, e := range n.Children {
		if e.Name.Local != "error" {
			continue
		}
		for _, c := range e.Children {
			if c.Name.Space == NSStanzas && c.Name.Local != "text" {
				return c.Name.Local
			}
		}
	}
	return CondUndefinedCondition
}
