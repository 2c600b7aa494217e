package gateway

import (
	"crypto/ed25519"
	"maps"
	"slices"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// PairConfig is a matching pair of gateway configurations with fresh keys,
// for tests and the demo. Both S2S edges listen on loopback ports chosen by
// the system; the link addresses are left to the caller (Options.LinkDial /
// Options.LinkListener, or Link.Dial / Link.Listen).
type PairConfig struct {
	A, B       *config.Config
	KeyA, KeyB ed25519.PrivateKey
}

// NewPairConfig builds configurations for gateway "a" serving localA (domain
// -> S2S address of its server) and gateway "b" serving localB.
func NewPairConfig(localA, localB map[string]string, secret string) (PairConfig, error) {
	ka, err := linkkey.GenerateKey()
	if err != nil {
		return PairConfig{}, err
	}
	kb, err := linkkey.GenerateKey()
	if err != nil {
		return PairConfig{}, err
	}
	side := func(name string, local, remote map[string]string, peer ed25519.PrivateKey) *config.Config {
		c := config.Default()
		c.Name = name
		c.LocalDomains = maps.Clone(local)
		c.RemoteDomains = slices.Sorted(maps.Keys(remote))
		c.Link.PeerKey = linkkey.FormatPublicKey(peer.Public().(ed25519.PublicKey))
		c.S2S.Listen = "127.0.0.1:0"
		c.S2S.DialbackSecret = secret + "-" + name
		c.SummaryInterval = config.D(0)
		c.Link.SpoolSync = "off"  // in memory: pairs in one process share no state_dir
		c.Presence.StateFile = "" // likewise: the presence mirror is not persisted
		c.Link.LearnDictBytes = 0 // and the link learns no dictionary
		return &c
	}
	return PairConfig{
		A:    side("a", localA, localB, kb),
		B:    side("b", localB, localA, ka),
		KeyA: ka,
		KeyB: kb,
	}, nil
}
