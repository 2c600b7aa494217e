package gateway

import (
	"context"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// mirrorEdge connects the presence mirror (package presence) to the
// gateway. Until it is wired, presence passes through unchanged.
type mirrorEdge struct{}

// newMirrorEdge returns nil when the mirror is disabled.
func newMirrorEdge(g *Gateway) (*mirrorEdge, error) { return nil, nil }

// fromLocal sees each presence a local server sends to a remote domain;
// true means the mirror handled it (the gateway sends nothing itself).
func (m *mirrorEdge) fromLocal(st s2s.Stanza) bool { return false }

// fromLink sees each presence from the peer for a local domain; true means
// the mirror handled it.
func (m *mirrorEdge) fromLink(st s2s.Stanza) bool { return false }

// run drives the mirror's timers until ctx ends.
func (m *mirrorEdge) run(ctx context.Context) error { <-ctx.Done(); return nil }
