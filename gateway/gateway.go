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
	spool  io.Closer         // the link's spool (nil: none)
	learn  *compress.Learner // the link's dictionary learner (nil: link.learn_dict_bytes = 0)
	udp    io.Closer         // the link's QUIC socket (nil: TCP); quic-go leaves a socket it did not open to its owner
	server *s2s.Server
	pool   *s2s.Pool
	s2sLn  net.Listener
	linkLn net.Listener
	admin  net.Listener
	c      *counters
	mirror *mirrorEdge // nil: presence passes through unchanged
	ops    *ops        // metrics, status history, shutdown gate, reload (ops.go)
	peer   string      // how the link reaches the peer, for the status page
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

// LinkStats is the link's own snapshot (frames, wire estimate, transport
// counters), for tools that need more than Snapshot gives.
func (g *Gateway) LinkStats() link.Stats { return g.link.Stats() }

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
	if g.udp != nil {
		g.udp.Close() // the link, and its QUIC transport, have stopped
	}
	if g.spool != nil {
		if cerr := g.spool.Close(); err == nil {
			err = cerr
		}
	}
	if g.learn != nil {
		if cerr := g.learn.Close(); err == nil { // saves the samples: the link has stopped
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
		if !errors.Is(err, link.ErrQueueFull) && !errors.Is(err, link.ErrSenderFull) {
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
	case errors.Is(err, link.ErrSenderFull):
		return dropSenderFull
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
