package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/isthmus-xmpp/isthmus/compress"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
)

// Options override parts of the configuration, for tests and the demo.
type Options struct {
	Logger        *slog.Logger
	PrivateKey    ed25519.PrivateKey                          // instead of link.key_file
	LinkDial      func(ctx context.Context) (net.Conn, error) // instead of dialling link.dial
	LinkListener  net.Listener                                // instead of listening on link.listen
	S2SListener   net.Listener                                // instead of listening on s2s.listen
	AdminListener net.Listener                                // instead of listening on admin_listen
	S2SDial       s2s.Dialer                                  // how to reach local servers (nil: net.Dialer)
}

// Gateway is one running gateway.
type Gateway struct {
	cfg    *config.Config
	log    *slog.Logger
	remote map[string]bool
	local  map[string]string

	link   *link.Link
	spool  io.Closer // the link's spool (nil: none)
	server *s2s.Server
	pool   *s2s.Pool
	s2sLn  net.Listener
	linkLn net.Listener
	admin  net.Listener
	c      *counters
	mirror *mirrorEdge // nil: presence passes through unchanged
	ops    *ops        // metrics, status history, shutdown gate, reload (ops.go)
}

// New builds a gateway from a validated configuration. Listeners are opened
// here, so their addresses are known before Run.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.LinkListener != nil || opts.LinkDial != nil || opts.PrivateKey != nil {
		c := *cfg
		if opts.PrivateKey != nil && c.Link.KeyFile == "" {
			c.Link.KeyFile = "(Options.PrivateKey)"
		}
		if opts.LinkListener != nil && c.Link.Listen == "" {
			c.Link.Listen = "in-process.invalid:1" // Options.LinkListener is used instead
		}
		if opts.LinkDial != nil && c.Link.Dial == "" {
			c.Link.Dial = "in-process.invalid:1" // Options.LinkDial is used instead
		}
		cfg = &c
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:    cfg,
		log:    opts.Logger,
		remote: map[string]bool{},
		local:  map[string]string{},
		c:      newCounters(),
	}
	g.ops = newOps(g)
	if g.log == nil {
		g.log = slog.Default()
	}
	g.log = g.log.With("gateway", cfg.Name)
	for _, d := range cfg.RemoteDomains {
		g.remote[strings.ToLower(d)] = true
	}
	for d, addr := range cfg.LocalDomains {
		g.local[strings.ToLower(d)] = addr
	}

	priv := opts.PrivateKey
	if priv == nil {
		var err error
		if priv, err = cfg.PrivateKey(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	peer, err := cfg.PeerPublicKey()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	linkTLS, err := link.TLSConfig(priv, peer)
	if err != nil {
		return nil, err
	}

	s2sTLS, poolTLS, err := s2sTLSConfigs(cfg)
	if err != nil {
		return nil, err
	}
	limits := s2s.Limits{
		MaxStanzaSize:  cfg.S2S.MaxStanzaSize,
		ConnectTimeout: cfg.S2S.ConnectTimeout.Duration,
		Keepalive:      cfg.S2S.Keepalive.Duration,
		IdleTimeout:    cfg.S2S.IdleTimeout.Duration,
		QueueLimit:     cfg.S2S.QueueLimit,
	}
	inLimits := inboundLimits(cfg, limits) // input limits and trust: hostile.go
	events := func(e s2s.Event) {
		g.ops.event(e)
		g.c.event(e)
		switch e.Kind {
		case s2s.EventInRefused, s2s.EventStreamError, s2s.EventOutFail, s2s.EventLimit:
			args := []any{"local", e.Local, "remote", e.Remote, "addr", e.Addr, "reason", e.Reason, "detail", e.Detail}
			if strings.Contains(e.Reason, s2s.ErrNoRouteBack.Error()) && g.s2sLn != nil {
				args = append(args, "s2s_listen", g.s2sLn.Addr().String()) // where its route back should lead
			}
			g.log.Warn("s2s: "+string(e.Kind), args...)
		}
	}
	g.server = s2s.NewServer(s2s.ServerConfig{
		Hosts:   func(d string) bool { return g.remote[strings.ToLower(d)] },
		Resolve: g.resolveLocal,
		Secret:  cfg.S2S.DialbackSecret,
		TLS:     s2sTLS,
		Limits:  inLimits,
		Deliver: g.fromLocal,
		Logger:  g.log,
		Events:  events,
		Dial:    opts.S2SDial,

		Peers:      func(d string) bool { _, ok := g.local[strings.ToLower(d)]; return ok },
		Allow:      allowFrom(cfg),
		RequireTLS: cfg.S2S.RequireTLS,
		Reject:     g.rejectLocal,
		VerifyTLS:  poolTLS, // dialback verification connections: STARTTLS as on delivery streams
		ClientCAs:  clientCAs(s2sTLS),
	})
	var capture *capturer // [capture]: record what local servers send
	poolDial := opts.S2SDial
	if cfg.Capture.Dir != "" {
		if capture, err = newCapturer(cfg.Capture.Dir, g.log); err != nil {
			return nil, err
		}
		poolDial = capture.dialer(opts.S2SDial)
	}
	g.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: g.resolveLocal,
		Secret:  cfg.S2S.DialbackSecret,
		TLS:     poolTLS,
		Limits:  limits,
		Bounce:  g.undeliverable,
		Logger:  g.log,
		Events:  events,
		Dial:    poolDial,

		RequireTLS: cfg.S2S.RequireTLS,
		Delivered:  func(st s2s.Stanza) { g.c.count(g.c.delivered, st.Name) },
	})

	lc := link.Config{
		TLS:          linkTLS,
		Dial:         opts.LinkDial,
		Listener:     opts.LinkListener,
		RateBPS:      cfg.Link.RateBPS,
		ReconnectMin: cfg.Link.ReconnectMin.Duration,
		ReconnectMax: cfg.Link.ReconnectMax.Duration,
		Session: link.SessionConfig{
			BatchWindow:    cfg.Link.BatchWindow.Duration,
			PresenceWindow: max(cfg.Link.PresenceWindow.Duration, 1), // 0: as batch_window (the session never waits less)
			MaxBatchBytes:  cfg.Link.MaxBatchBytes,
			Keepalive:      cfg.Link.Keepalive.Duration,
			MaxQueueBytes:  int(cfg.Link.SpoolMaxBytes),
			MaxAge:         cfg.Link.MaxAge.Duration,
			// What a frame from the peer may decode to: a full batch, or
			// one stanza as big as the local servers take.
			MaxDecoded: max(cfg.Link.MaxBatchBytes, cfg.S2S.MaxStanzaSize),
		},
		Deliver: g.fromLink,
		Expired: g.linkExpired,
		Logger:  g.log,
	}
	if cfg.Link.Keepalive.Duration == 0 {
		lc.Session.Keepalive = -1 // off
	}
	closeAll := func() {
		for _, l := range []net.Listener{g.s2sLn, g.linkLn, g.admin} {
			if l != nil {
				l.Close()
			}
		}
	}
	if err := linkTransport(cfg, &lc); err != nil {
		return nil, err
	}
	g.linkLn = lc.Listener
	if g.spool, err = openSpool(cfg, &lc); err != nil {
		closeAll()
		return nil, err
	}
	if g.link, err = link.New(lc); err != nil {
		closeAll()
		return nil, err
	}
	if g.mirror, err = newMirrorEdge(g); err != nil {
		closeAll()
		return nil, err
	}
	g.s2sLn = opts.S2SListener
	if g.s2sLn == nil {
		if g.s2sLn, err = net.Listen("tcp", cfg.S2S.Listen); err != nil {
			closeAll()
			return nil, fmt.Errorf("gateway: s2s listen: %w", err)
		}
	}
	if capture != nil {
		g.s2sLn = capture.listener(g.s2sLn)
	}
	g.admin = opts.AdminListener
	if g.admin == nil && cfg.AdminListen != "" {
		if g.admin, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			closeAll()
			return nil, fmt.Errorf("gateway: admin listen: %w", err)
		}
	}
	return g, nil
}

// S2SAddr is where local servers connect.
func (g *Gateway) S2SAddr() net.Addr { return g.s2sLn.Addr() }

// AdminAddr is the admin HTTP address (nil when off).
func (g *Gateway) AdminAddr() net.Addr {
	if g.admin == nil {
		return nil
	}
	return g.admin.Addr()
}

// LinkAddr is the link listen address (nil on a dialling-only gateway).
func (g *Gateway) LinkAddr() net.Addr {
	if g.linkLn == nil {
		return nil
	}
	return g.linkLn.Addr()
}

// Snapshot returns the gateway's figures.
func (g *Gateway) Snapshot() Snapshot { return g.c.snapshot(g.cfg.Name, g.link.Stats()) }

// Run serves until ctx ends, then closes the S2S streams cleanly.
func (g *Gateway) Run(ctx context.Context) error {
	g.log.Info("gateway: starting", "s2s", g.s2sLn.Addr().String(), "remote_domains", g.cfg.RemoteDomains)
	eg, ctx := errgroup.WithContext(ctx)
	linkDone := make(chan struct{})
	eg.Go(func() error { defer close(linkDone); return g.link.Run(ctx) })
	if g.mirror != nil {
		eg.Go(func() error { return g.mirror.run(ctx) })
	}
	eg.Go(func() error { return g.server.Serve(ctx, g.ops.listener(g.s2sLn)) })
	eg.Go(func() error {
		<-ctx.Done()
		<-linkDone // the link delivers nothing more: the pool's queues are final
		return g.pool.Close()
	})
	if g.admin != nil {
		srv := &http.Server{Handler: g.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		eg.Go(func() error {
			if err := srv.Serve(g.admin); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("gateway: admin: %w", err)
			}
			return nil
		})
		eg.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	eg.Go(func() error { return g.ops.run(ctx) }) // history samples, summary log
	err := eg.Wait()
	if g.spool != nil {
		if cerr := g.spool.Close(); err == nil {
			err = cerr
		}
	}
	g.logSummary()
	return err
}

func (g *Gateway) logSummary() {
	s := g.Snapshot()
	g.log.Info("summary",
		"link_up", s.Link.Up,
		"out_stanzas", s.Out.StanzasTotal, "out_raw", s.Out.RawBytes, "out_wire", s.Out.WireBytes, "out_ratio", fmt.Sprintf("%.1f", s.Out.Ratio()),
		"in_stanzas", s.In.StanzasTotal, "in_raw", s.In.RawBytes, "in_wire", s.In.WireBytes, "in_ratio", fmt.Sprintf("%.1f", s.In.Ratio()),
		"queued", s.Link.Waiting+s.Link.Unacked)
}

func (g *Gateway) resolveLocal(domain string) (string, error) {
	if addr, ok := g.local[strings.ToLower(domain)]; ok {
		return addr, nil
	}
	return "", fmt.Errorf("gateway: %q is not a local domain", domain)
}

// fromLocal takes a stanza a local server sent to a remote domain. From
// here on it is handed on (to the link or the presence mirror) or bounced
// to its sender, or, when no error reply is possible, dropped; each counted.
func (g *Gateway) fromLocal(st s2s.Stanza) {
	g.c.count(g.c.accepted, st.Name)
	if g.mirror != nil && (st.Name == "presence" || st.Name == "iq") && g.mirror.fromLocal(st) {
		return // answered or absorbed by the presence mirror (iq: caps cache)
	}
	if g.mirror != nil {
		g.mirror.flushFrom(st) // the sender's presence goes first
	}
	g.toLink(st)
}

// toLink sends a stanza from a local sender to the peer, or bounces it to
// its sender when the link refuses it (its queue is full).
func (g *Gateway) toLink(st s2s.Stanza) {
	if err := g.sendLink(st, linkItem(st)); err != nil {
		g.bounceToLocal(st, linkReason(err))
	}
}

// toLinkItem sends a stanza the presence mirror made itself (a fan-out, a
// sync iq) with the link item the mirror chose. When the link refuses it,
// it is dropped and counted, never bounced: no local sender is waiting
// for it, and the mirror's sync repairs the peer's table.
func (g *Gateway) toLinkItem(st s2s.Stanza, it link.Item) {
	if err := g.sendLink(st, it); err != nil {
		g.c.drop(dropMirrorRefused)
	}
}

// sendLink queues it on the link and counts st as sent.
func (g *Gateway) sendLink(st s2s.Stanza, it link.Item) error {
	if err := g.link.Send(it); err != nil {
		if !errors.Is(err, link.ErrQueueFull) {
			g.log.Warn("gateway: link refused a stanza", "from", st.From, "to", st.To, "err", err)
		}
		return err
	}
	g.c.stanza(&g.c.out, st.Name, len(st.Raw))
	return nil
}

// linkReason is the drop reason for an error from link.Send.
func linkReason(err error) dropReason {
	switch {
	case errors.Is(err, link.ErrQueueFull):
		return dropLinkFull
	case errors.Is(err, compress.ErrUnencodable):
		return dropUnencodable
	}
	return dropSpoolError
}

// bounceToLocal returns an error for a stanza a local server sent (or
// drops it when no error reply is possible), counted under r. The reply
// never bounces in turn: while the local server's stream has no room for
// it, this waits (s2s.Pool.Reply), so a flooding server is no longer read.
func (g *Gateway) bounceToLocal(st s2s.Stanza, r dropReason) {
	reply, ok := s2s.ErrorReply(st, r.cond())
	if !ok {
		g.c.drop(r)
		return
	}
	g.c.bounce(r, r.cond())
	g.pool.Reply(reply)
}

// toLocal delivers a stanza to the local server hosting its recipient.
func (g *Gateway) toLocal(st s2s.Stanza) { g.pool.Send(st) }

// fromLink takes the stanzas of one DATA frame from the peer.
func (g *Gateway) fromLink(batch [][]byte) {
	for _, raw := range batch {
		st, err := s2s.ParseStanza(raw)
		if err != nil {
			g.c.drop(dropBadFromLink)
			g.log.Warn("gateway: malformed stanza from the peer", "err", err)
			continue
		}
		g.c.stanza(&g.c.in, st.Name, len(st.Raw))
		if err := localLimits(g.cfg).check(st.Raw); err != nil {
			g.log.Warn("gateway: stanza from the peer over the local s2s limits", "from", st.From, "to", st.To, "err", err)
			g.bounceToRemote(st, dropOverLimitFromLink)
			continue
		}
		from, to := s2s.Domain(st.From), s2s.Domain(st.To)
		if _, ok := g.local[to]; !ok || !g.remote[from] {
			g.log.Warn("gateway: stanza from the peer not for a local domain", "from", st.From, "to", st.To)
			g.bounceToRemote(st, dropMisrouted)
			continue
		}
		if g.mirror != nil && (st.Name == "presence" || st.Name == "iq") && g.mirror.fromLink(st) {
			continue
		}
		g.toLocal(st)
	}
}

// undeliverable takes a stanza the S2S pool could not deliver to a local
// server. One from the link is bounced over the link; one the gateway made
// (a bounce to a local sender, whose server is unreachable) is dropped.
func (g *Gateway) undeliverable(st s2s.Stanza, cond string) {
	g.bounceToRemote(st, poolReason(cond))
}

// bounceToRemote returns an error for a stanza that came over the link (or
// drops it when no error reply is possible), counted under r.
func (g *Gateway) bounceToRemote(st s2s.Stanza, r dropReason) {
	reply, ok := s2s.ErrorReply(st, r.cond())
	if !ok {
		g.c.drop(r)
		return
	}
	g.c.bounce(r, r.cond())
	g.toLink(reply)
}
