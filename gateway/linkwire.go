package gateway

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
	"github.com/isthmus-xmpp/isthmus/link/spool"
)

// linkTransport fills in how the link reaches the peer (unless Options did):
// TCP with the kernel keepalive off, or QUIC on one UDP socket.
func linkTransport(cfg *config.Config, lc *link.Config) error {
	lc.Transport = cfg.Link.Transport
	if cfg.Link.Transport == link.TransportDatagram {
		// The datagram transport pins the same key as TLS does.
		peer, err := cfg.PeerPublicKey()
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		lc.PeerKey = peer
		lc.DatagramMaxProbe = cfg.Link.ProbeMax.Duration
		if cfg.Link.SpoolSync != "off" { // else nothing is kept on disk
			lc.DatagramState = filepath.Join(cfg.StateDir, "datagram.state")
		}
	}
	if lc.PacketConn != nil {
		return nil // Options.LinkPacketConn
	}
	if (cfg.Link.Transport == link.TransportQUIC || cfg.Link.Transport == link.TransportDatagram) && lc.Dial == nil && lc.Listener == nil {
		laddr := "0.0.0.0:0"
		if cfg.Link.Listen != "" {
			laddr = cfg.Link.Listen
			lc.QUICAccept = true
		}
		pc, err := net.ListenPacket("udp", laddr)
		if err != nil {
			return fmt.Errorf("gateway: link listen: %w", err)
		}
		lc.PacketConn = pc
		if cfg.Link.Dial != "" {
			ua, err := net.ResolveUDPAddr("udp", cfg.Link.Dial)
			if err != nil {
				pc.Close()
				return fmt.Errorf("gateway: link dial: %w", err)
			}
			lc.PeerAddr = ua
		}
		return nil
	}
	lc.Transport = link.TransportTCP
	if lc.Dial == nil && cfg.Link.Dial != "" {
		lc.Dial = link.DialTCP(cfg.Link.Dial)
	}
	if lc.Listener == nil && cfg.Link.Listen != "" {
		ln, err := link.ListenTCP(cfg.Link.Listen)
		if err != nil {
			return fmt.Errorf("gateway: link listen: %w", err)
		}
		lc.Listener = ln
	}
	return nil
}

// openSpool opens the link's disk spool in state_dir (none when
// link.spool_sync is "off").
func openSpool(cfg *config.Config, lc *link.Config) (io.Closer, error) {
	if cfg.Link.SpoolSync == "off" {
		return nil, nil
	}
	pol, err := spool.ParseSyncPolicy(cfg.Link.SpoolSync)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	sp, err := spool.Open(filepath.Join(cfg.StateDir, "spool"), pol)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	lc.Journal = sp
	return sp, nil
}

// linkItem tells the link what a stanza is: its class (priority and drop
// rule), the pair of bare JIDs it is between (whose order the link keeps
// across classes, RFC 6120 §10.1), its group (sender and recipient domain,
// the pair of the mirror's fan-outs) and, for availability presence, the
// (from, to) it is about, so a newer one replaces a queued older one.
func linkItem(st s2s.Stanza) link.Item {
	from, to := bareJID(st.From), bareJID(st.To)
	// The presence mirror's fan-out stanzas go to a domain: their Pair is
	// "bare from|domain", which Group names for everything else the sender
	// sends to that domain.
	dom := to
	if _, d, ok := strings.Cut(to, "@"); ok {
		dom = d
	}
	it := link.Item{Data: st.Raw, Pair: from + "|" + to, Group: from + "|" + dom}
	switch st.Name {
	case "iq":
		it.Class = link.ClassIQ
	case "presence":
		// Subscription presence is a request, not state: never coalesced
		// or dropped.
		if st.Type == "" || st.Type == "unavailable" {
			it.Class = link.ClassPresence
			it.Coalesce = st.From + "|" + st.To
		}
	}
	return it
}

// bareJID returns the bare part of a JID as sent (everything before the
// first '/', RFC 7622 §3.1), lower-cased in ASCII. It only groups stanzas
// for ordering, so folding more than PRECIS would costs nothing but a
// little priority.
func bareJID(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		j = j[:i]
	}
	return strings.ToLower(j)
}

// linkExpired bounces iqs and messages the link gave up on (link.max_age).
func (g *Gateway) linkExpired(items []link.Item) { g.handedBack(items, dropLinkExpired) }

// linkRejected bounces the iqs and messages the codec could not carry to
// the peer (link.Config.Rejected) with policy-violation, as ingress does.
func (g *Gateway) linkRejected(items []link.Item) { g.handedBack(items, dropUnencodable) }

// handedBack bounces items the link gave back to their local senders.
func (g *Gateway) handedBack(items []link.Item, r dropReason) {
	for _, it := range items {
		st, err := s2s.ParseStanza(it.Data)
		if err != nil {
			g.c.drop(r)
			continue
		}
		g.bounceToLocal(st, r)
	}
}
