package gateway

import (
	"bytes"
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
// back to its local sender. Like every bounce to a local sender it waits for room
// rather than being dropped (s2s.Pool.Reply).
func (g *Gateway) rejectLocal(reply s2s.Stanza) {
	g.c.count(g.c.accepted, reply.Name) // refused at ingress, but accepted from the stream
	g.c.bounce(dropRejected, replyCond(reply.Raw))
	g.pool.Reply(reply)
}

// replyCond is the condition of an error reply made by s2s.ErrorReply
// ("<cond xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"), or
// "undefined-condition".
func replyCond(raw []byte) string {
	i := bytes.Index(raw, []byte(" xmlns='"+s2s.NSStanzas+"'"))
	if i < 0 {
		return s2s.CondUndefinedCondition
	}
	j := bytes.LastIndexByte(raw[:i], '<')
	if j < 0 || !labelSafe.Match(raw[j+1:i]) {
		return s2s.CondUndefinedCondition
	}
	return string(raw[j+1 : i])
}
