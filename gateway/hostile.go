package gateway

import (
	"net"
	"net/netip"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// inboundLimits adds the [s2s] input limits to the limits both S2S roles
// share; they bound what local servers may send to the gateway.
func inboundLimits(cfg *config.Config, l s2s.Limits) s2s.Limits {
	l.MaxDepth = cfg.S2S.MaxDepth
	l.MaxAttrs = cfg.S2S.MaxAttributes
	l.MaxTextSize = cfg.S2S.MaxTextSize
	l.MaxConnsPerAddr = cfg.S2S.MaxConnsPerAddress
	l.StanzaRate = cfg.S2S.StanzaRate
	l.StanzaBurst = cfg.S2S.StanzaBurst
	return l
}

// allowFrom returns the s2s.allow_from check (nil: any address).
func allowFrom(cfg *config.Config) func(net.Addr) bool {
	if len(cfg.S2S.AllowFrom) == 0 {
		return nil
	}
	var prefixes []netip.Prefix
	for _, a := range cfg.S2S.AllowFrom {
		if p, err := config.ParsePrefix(a); err == nil { // Validate checked them
			prefixes = append(prefixes, p)
		}
	}
	return func(addr net.Addr) bool {
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return false
		}
		ip := ap.Addr().Unmap()
		for _, p := range prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
}

// rejectLocal sends the error reply to a stanza the S2S edge refused with
// a stanza error (a malformed recipient, over a limit, not strict XML)
// back to its local sender.
func (g *Gateway) rejectLocal(reply s2s.Stanza) { g.toLocal(reply) }
