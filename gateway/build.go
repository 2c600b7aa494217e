package gateway

import (
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/isthmus-xmpp/isthmus/compress"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
)

// New builds a gateway from a validated configuration. Listeners are opened
// here, so their addresses are known before Run.
//
// The gateway owns the listeners in opts from the call on: Run closes
// them, and so does New when it fails, with everything else it opened
// (the spool, the link's listener or UDP socket, the S2S and admin
// listeners).
func New(cfg *config.Config, opts Options) (_ *Gateway, err error) {
	var open closers
	defer func() {
		if err != nil {
			open.close()
		}
	}()
	open.add(opts.LinkListener, opts.S2SListener, opts.AdminListener)
	if err := cfg.ValidateWith(opts.supplied()); err != nil {
		return nil, err
	}
	g := newGateway(cfg, opts)
	linkTLS, err := g.linkTLS(opts.PrivateKey)
	if err != nil {
		return nil, err
	}
	capture, err := g.newS2S(opts)
	if err != nil {
		return nil, err
	}
	if err := g.newLink(linkTLS, opts, &open); err != nil {
		return nil, err
	}
	if g.mirror, err = newMirrorEdge(g); err != nil {
		return nil, err
	}
	if err := g.listen(opts, capture, &open); err != nil {
		return nil, err
	}
	return g, nil
}

// supplied tells the configuration check which link settings opts gives
// in place of configuration keys.
func (o Options) supplied() config.Supplied {
	return config.Supplied{
		PrivateKey:   o.PrivateKey != nil,
		LinkListener: o.LinkListener != nil || (o.LinkPacketConn != nil && o.LinkPeerAddr == nil),
		LinkDial:     o.LinkDial != nil || (o.LinkPacketConn != nil && o.LinkPeerAddr != nil),
	}
}

// newGateway is the gateway's state before anything is opened: domains,
// logger and counters.
func newGateway(cfg *config.Config, opts Options) *Gateway {
	g := &Gateway{
		cfg:    cfg,
		log:    opts.Logger,
		remote: map[string]bool{},
		local:  map[string]string{},
		c:      newCounters(),
		peer:   describePeer(cfg, opts),
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
	return g
}

// describePeer says how the link reaches the peer, for the status page.
func describePeer(cfg *config.Config, opts Options) string {
	dial, listen := cfg.Link.Dial, cfg.Link.Listen
	if opts.LinkDial != nil {
		dial = "in-process (Options.LinkDial)"
	}
	if opts.LinkListener != nil {
		listen = opts.LinkListener.Addr().String()
	}
	switch {
	case dial != "" && listen != "":
		return "dials " + dial + ", accepts on " + listen
	case dial != "":
		return "dials " + dial
	}
	return "accepts on " + listen
}

// linkTLS is the link's mutual TLS: this gateway's key (priv, or
// link.key_file when nil) and the peer's (link.peer_key).
func (g *Gateway) linkTLS(priv ed25519.PrivateKey) (*tls.Config, error) {
	if priv == nil {
		var err error
		if priv, err = g.cfg.PrivateKey(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	peer, err := g.cfg.PeerPublicKey()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return link.TLSConfig(priv, peer)
}

// newS2S builds the S2S edge: the server local servers connect to and the
// pool of streams to them. With [capture] it returns the capturer whose
// listener the S2S listener is wrapped in (listen).
func (g *Gateway) newS2S(opts Options) (*capturer, error) {
	cfg := g.cfg
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
	g.server = s2s.NewServer(s2s.ServerConfig{
		Hosts:   func(d string) bool { return g.remote[strings.ToLower(d)] },
		Resolve: g.resolveLocal,
		Secret:  cfg.S2S.DialbackSecret,
		TLS:     s2sTLS,
		Limits:  inboundLimits(cfg, limits), // input limits and trust: hostile.go
		Deliver: g.fromLocal,
		Logger:  g.log,
		Events:  g.s2sEvent,
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
		Events:  g.s2sEvent,
		Dial:    poolDial,

		RequireTLS: cfg.S2S.RequireTLS,
		Delivered:  func(st s2s.Stanza) { g.c.count(g.c.delivered, st.Name) },
	})
	return capture, nil
}

// s2sEvent follows the S2S edge's events: stream gauges, counters, and a
// warning for each failure.
func (g *Gateway) s2sEvent(e s2s.Event) {
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

// newLink opens the link's transport (listener or UDP socket) and spool
// and builds the link; what it opens is added to open.
func (g *Gateway) newLink(tlsConf *tls.Config, opts Options, open *closers) error {
	lc := g.linkConfig(tlsConf, opts)
	if err := linkTransport(g.cfg, &lc); err != nil {
		return err
	}
	open.add(lc.Listener, lc.PacketConn)
	g.linkLn = lc.Listener
	if lc.PacketConn != nil {
		g.udp = lc.PacketConn
	}
	var err error
	if g.spool, err = openSpool(g.cfg, &lc); err != nil {
		return err
	}
	open.add(g.spool)
	if g.cfg.Link.LearnDictBytes > 0 {
		ln, err := compress.OpenLearner(compress.LearnConfig{
			Dir:         filepath.Join(g.cfg.StateDir, "learn"),
			SampleBytes: g.cfg.Link.LearnDictBytes,
			Logger:      g.log,
		})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		open.add(ln)
		g.learn, lc.Learner = ln, ln
	}
	g.link, err = link.New(lc)
	return err
}

// linkConfig is the link's configuration, before its transport and spool.
func (g *Gateway) linkConfig(tlsConf *tls.Config, opts Options) link.Config {
	cfg := g.cfg
	lc := link.Config{
		TLS:          tlsConf,
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
			MaxSenderBytes: int(cfg.Link.SenderMaxBytes),
			MaxAge:         cfg.Link.MaxAge.Duration,
			// What a frame from the peer may decode to: a full batch, or
			// one stanza as big as the local servers take.
			MaxDecoded: max(cfg.Link.MaxBatchBytes, cfg.S2S.MaxStanzaSize),
		},
		Deliver:  g.fromLink,
		Expired:  g.linkExpired,
		Rejected: g.linkRejected,
		Logger:   g.log,
	}
	if cfg.Link.Keepalive.Duration == 0 {
		lc.Session.Keepalive = -1 // off
	}
	return lc
}

// listen opens the S2S listener (unless opts gave one; wrapped by capture
// when recording) and the admin listener (unless off); what it opens is
// added to open.
func (g *Gateway) listen(opts Options, capture *capturer, open *closers) error {
	var err error
	g.s2sLn = opts.S2SListener
	if g.s2sLn == nil {
		if g.s2sLn, err = net.Listen("tcp", g.cfg.S2S.Listen); err != nil {
			return fmt.Errorf("gateway: s2s listen: %w", err)
		}
		open.add(g.s2sLn)
	}
	if capture != nil {
		g.s2sLn = capture.listener(g.s2sLn)
	}
	g.admin = opts.AdminListener
	if g.admin == nil && g.cfg.AdminListen != "" {
		if g.admin, err = net.Listen("tcp", g.cfg.AdminListen); err != nil {
			return fmt.Errorf("gateway: admin listen: %w", err)
		}
		open.add(g.admin)
	}
	return nil
}

// closers is what New has opened so far, closed again when a later step
// fails.
type closers []io.Closer

// add notes each non-nil c.
func (cs *closers) add(c ...io.Closer) {
	for _, x := range c {
		if x != nil {
			*cs = append(*cs, x)
		}
	}
}

// close closes them, last opened first.
func (cs closers) close() {
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i].Close()
	}
}
