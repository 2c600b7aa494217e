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
	Logger *slog.Logger
	Events func(Event)
	Dial   Dialer // nil: net.Dialer
	// RequireTLS fails a stream whose peer offers no STARTTLS.
	RequireTLS bool
}

// Pool keeps one outgoing stream per (from-domain, to-domain) pair.
type Pool struct {
	cfg    PoolConfig
	lim    Limits
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the streams' goroutines

	mu      sync.Mutex // guards the following fields and every outStream's queue and dead
	streams map[pair]*outStream
	closed  bool
}

// outStream is one outgoing stream and its queue.
type outStream struct {
	p      *Pool
	key    pair
	notify chan struct{} // capacity 1: something was queued
	queue  []Stanza      // guarded by p.mu
	dead   bool          // guarded by p.mu: accepts no more stanzas
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, lim: cfg.Limits.withDefaults(), log: log, ctx: ctx, cancel: cancel, streams: map[pair]*outStream{}}
}

func (p *Pool) event(e Event) {
	if p.cfg.Events != nil {
		p.cfg.Events(e)
	}
}

func (p *Pool) bounce(st Stanza, cond string) {
	p.event(Event{Kind: "bounce", Local: Domain(st.From), Remote: Domain(st.To), Reason: cond, Bytes: len(st.Raw)})
	p.cfg.Bounce(st, cond)
}

// Send queues st on the outgoing stream for (Domain(st.From),
// Domain(st.To)), opening and authenticating it if needed. It does not
// block on the network. Stanzas keep their order per stream. Over
// Limits.QueueLimit, or after Close, st is bounced at once.
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
	o := p.streams[k]
	if o == nil {
		o = &outStream{p: p, key: k, notify: make(chan struct{}, 1)}
		p.streams[k] = o
		p.wg.Add(1)
		go o.run()
	}
	if len(o.queue) >= p.lim.QueueLimit {
		p.mu.Unlock()
		p.bounce(st, CondResourceConstraint)
		return
	}
	o.queue = append(o.queue, st)
	p.mu.Unlock()
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
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

// pop takes the next queued stanza.
func (o *outStream) pop() (Stanza, bool) {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if len(o.queue) == 0 {
		return Stanza{}, false
	}
	st := o.queue[0]
	o.queue[0] = Stanza{}
	o.queue = o.queue[1:]
	if len(o.queue) == 0 {
		o.queue = nil
	}
	return st, true
}

// retire takes o out of the pool and returns what was still queued.
func (o *outStream) retire() []Stanza {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	o.dead = true
	if o.p.streams[o.key] == o {
		delete(o.p.streams, o.key)
	}
	q := o.queue
	o.queue = nil
	return q
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
	return true
}

func (o *outStream) run() {
	p := o.p
	defer p.wg.Done()
	addr, err := o.serve()
	rest := o.retire()
	ev := Event{Kind: "out-close", Local: o.key.from, Remote: o.key.to, Addr: addr}
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
		p.event(Event{Kind: "out-fail", Local: o.key.from, Remote: o.key.to, Addr: addr, Reason: err.Error()})
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
	ev := Event{Kind: "out-auth", Local: o.key.from, Remote: o.key.to, Addr: addr}
	if _, ok := conn.(*tls.Conn); ok {
		ev.Reason = "tls"
	}
	p.event(ev)
	log := p.log.With("from", o.key.from, "to", o.key.to)
	sess := newSession(conn, rd, p.lim, log)
	sess.notify = o.notify
	sess.pull = o.pop
	sess.writeFail = func(st Stanza, err error) { p.bounce(st, CondRemoteServerNotFound) }
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
