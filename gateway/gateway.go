package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

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
	// LinkPacketConn (with LinkPeerAddr on the dialling side) carries the
	// link when link.transport is "quic" or "datagram", instead of a UDP
	// socket on link.listen / link.dial.
	LinkPacketConn net.PacketConn
	LinkPeerAddr   net.Addr
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
	if opts.LinkListener != nil || opts.LinkDial != nil || opts.PrivateKey != nil || opts.LinkPacketConn != nil {
		c := *cfg
		if opts.PrivateKey != nil && c.Link.KeyFile == "" {
			c.Link.KeyFile = "(Options.PrivateKey)"
		}
		if opts.LinkListener != nil {
			c.Link.Listen = "in-process.invalid:1" // Options.LinkListener is used instead
		}
		if opts.LinkDial != nil && c.Link.Dial == "" {
			c.Link.Dial = "in-process.invalid:1" // Options.LinkDial is used instead
		}
		if opts.LinkPacketConn != nil && c.Link.Listen == "" && c.Link.Dial == "" {
			c.Link.Listen = "in-process.invalid:1" // Options.LinkPacketConn is used instead
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

	var s2sTLS, poolTLS *tls.Config
	if cfg.S2S.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.S2S.CertFile, cfg.S2S.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: s2s certificate: %w", err)
		}
		s2sTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		// Local servers are authenticated by dialback, so their certificates
		// are not verified; TLS only keeps the local hop private.
		poolTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
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
		if e.Kind == "stream-error" || e.Kind == "in-refused" {
			g.c.event(e.Kind + ":" + e.Reason)
		} else if e.Kind != "limit" {
			g.c.event(e.Kind)
		}
		if e.Detail != "" {
			g.c.event("limit:" + e.Detail)
		}
		if e.Kind == "in-refused" || e.Kind == "stream-error" || e.Kind == "out-fail" || e.Kind == "limit" {
			g.log.Warn("s2s: "+e.Kind, "local", e.Local, "remote", e.Remote, "addr", e.Addr, "reason", e.Reason, "detail", e.Detail)
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
		Bounce:  g.bounceToRemote,
		Logger:  g.log,
		Events:  events,
		Dial:    poolDial,
	})

	lc := link.Config{
		TLS:          linkTLS,
		Dial:         opts.LinkDial,
		Listener:     opts.LinkListener,
		PacketConn:   opts.LinkPacketConn,
		PeerAddr:     opts.LinkPeerAddr,
		QUICAccept:   opts.LinkPacketConn != nil && opts.LinkPeerAddr == nil,
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
	eg.Go(func() error { return g.link.Run(ctx) })
	if g.mirror != nil {
		eg.Go(func() error { return g.mirror.run(ctx) })
	}
	eg.Go(func() error { return g.server.Serve(ctx, g.ops.listener(g.s2sLn)) })
	eg.Go(func() error {
		<-ctx.Done()
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

// fromLocal takes a stanza a local server sent to a remote domain.
func (g *Gateway) fromLocal(st s2s.Stanza) {
	if g.mirror != nil && (st.Name == "presence" || st.Name == "iq") && g.mirror.fromLocal(st) {
		return // answered or absorbed by the presence mirror (iq: caps cache)
	}
	if g.mirror != nil {
		g.mirror.flushFrom(st) // the sender's presence goes first
	}
	g.toLink(st)
}

// toLink sends a stanza to the peer, or bounces it to its local sender when
// the link queue is full.
func (g *Gateway) toLink(st s2s.Stanza) { g.toLinkItem(st, linkItem(st)) }

// toLinkItem is toLink with the link item made by the caller.
func (g *Gateway) toLinkItem(st s2s.Stanza, it link.Item) {
	if err := g.link.Send(it); err != nil {
		g.c.drop("link-queue-full")
		g.log.Warn("gateway: link queue full: bouncing", "from", st.From, "to", st.To)
		if reply, ok := s2s.ErrorReply(st, s2s.CondResourceConstraint); ok {
			g.toLocal(reply)
		}
		return
	}
	g.c.stanza(&g.c.out, st.Name, len(st.Raw))
}

// toLocal delivers a stanza to the local server hosting its recipient.
func (g *Gateway) toLocal(st s2s.Stanza) { g.pool.Send(st) }

// fromLink takes the stanzas of one DATA frame from the peer.
func (g *Gateway) fromLink(batch [][]byte) {
	for _, raw := range batch {
		st, err := s2s.ParseStanza(raw)
		if err != nil {
			g.c.drop("bad-stanza-from-link")
			g.log.Warn("gateway: malformed stanza from the peer", "err", err)
			continue
		}
		g.c.stanza(&g.c.in, st.Name, len(st.Raw))
		from, to := s2s.Domain(st.From), s2s.Domain(st.To)
		if _, ok := g.local[to]; !ok || !g.remote[from] {
			g.c.drop("misrouted-from-link")
			g.log.Warn("gateway: stanza from the peer not for a local domain", "from", st.From, "to", st.To)
			g.bounceToRemote(st, s2s.CondItemNotFound)
			continue
		}
		if g.mirror != nil && (st.Name == "presence" || st.Name == "iq") && g.mirror.fromLink(st) {
			continue
		}
		g.toLocal(st)
	}
}

// bounceToRemote returns an error for a stanza that came over the link.
func (g *Gateway) bounceToRemote(st s2s.Stanza, cond string) {
	g.c.drop("bounce:" + cond)
	reply, ok := s2s.ErrorReply(st, cond)
	if !ok {
		return
	}
	g.toLink(reply)
}
