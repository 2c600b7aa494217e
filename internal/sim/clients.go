package sim

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// profile is one XMPP client program as it looks on the wire.
type profile struct {
	name      string // disco identity name
	version   string // jabber:iq:version answer
	category  string
	typ       string
	node      string // XEP-0115 node
	features  []string
	extras    []string // features only some versions advertise
	weight    int      // share of users running it
	avatarPEP bool     // fetches XEP-0084 metadata rather than vcard-temp
	uuidIDs   bool     // stanza ids are UUIDs, else random base64
	priority  bool     // sends <priority/>
	resource  func(r *rand.Rand) string
}

// client is one version of a profile, with its computed caps ver.
type client struct {
	*profile
	features []string // sorted
	ver      string   // XEP-0115 verification string, base64 SHA-1
}

const (
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	hexdig   = "0123456789abcdef"
	b64url   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

var commonJingle = []string{
	"urn:xmpp:jingle:1",
	"urn:xmpp:jingle:apps:dtls:0",
	"urn:xmpp:jingle:apps:rtp:1",
	"urn:xmpp:jingle:apps:rtp:audio",
	"urn:xmpp:jingle:apps:rtp:video",
	"urn:xmpp:jingle:transports:ice-udp:1",
	"urn:xmpp:jingle:transports:ibb:1",
	"urn:xmpp:jingle:transports:s5b:1",
}

var profiles = []*profile{
	{
		name: "Conversations", version: "2.16.7", category: "client", typ: "phone",
		node: "http://conversations.im", weight: 35, avatarPEP: true,
		features: append([]string{
			"eu.siacs.conversations.axolotl.devicelist+notify",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/nick+notify",
			"jabber:iq:version",
			"jabber:x:conference",
			"jabber:x:oob",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:jingle-message:0",
			"urn:xmpp:jingle:apps:file-transfer:3",
			"urn:xmpp:jingle:apps:file-transfer:5",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
			"urn:xmpp:time",
		}, commonJingle...),
		extras: []string{"urn:xmpp:jingle:apps:rtp:rtcp-fb:0", "urn:xmpp:reactions:0"},
		resource: func(r *rand.Rand) string {
			return "Conversations." + randString(r, alnum, 4)
		},
	},
	{
		name: "Gajim", version: "1.9.5", category: "client", typ: "pc",
		node: "https://gajim.org", weight: 20, uuidIDs: true, priority: true,
		features: []string{
			"eu.siacs.conversations.axolotl.devicelist+notify",
			"http://jabber.org/protocol/bytestreams",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/geoloc+notify",
			"http://jabber.org/protocol/ibb",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/nick+notify",
			"http://jabber.org/protocol/si",
			"http://jabber.org/protocol/si/profile/file-transfer",
			"http://jabber.org/protocol/tune+notify",
			"jabber:iq:last",
			"jabber:iq:version",
			"jabber:x:conference",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:eme:0",
			"urn:xmpp:hashes:2",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
			"urn:xmpp:time",
		},
		extras: []string{"urn:xmpp:reactions:0", "urn:xmpp:message-moderate:0", "urn:xmpp:sid:0"},
		resource: func(r *rand.Rand) string {
			return "gajim." + randString(r, upperNum, 8)
		},
	},
	{
		name: "Dino", version: "0.4.4", category: "client", typ: "pc",
		node: "https://dino.im", weight: 15, avatarPEP: true, uuidIDs: true,
		features: append([]string{
			"eu.siacs.conversations.axolotl.devicelist+notify",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/nick+notify",
			"jabber:iq:version",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:bookmarks:1+notify",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:jingle-message:0",
			"urn:xmpp:jingle:apps:file-transfer:5",
			"urn:xmpp:jingle:apps:grouping:0",
			"urn:xmpp:mam:2",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
		}, commonJingle...),
		extras: []string{"urn:xmpp:reply:0", "urn:xmpp:message-retract:1"},
		resource: func(r *rand.Rand) string {
			return "dino." + randString(r, hexdig, 8)
		},
	},
	{
		name: "Profanity", version: "0.14.0", category: "client", typ: "console",
		node: "http://profanity-im.github.io", weight: 10, priority: true,
		features: []string{
			"eu.siacs.conversations.axolotl.devicelist+notify",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/rosterx",
			"jabber:iq:last",
			"jabber:iq:version",
			"jabber:x:conference",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:openpgp:0:public-keys+notify",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
			"urn:xmpp:time",
		},
		extras: []string{"urn:xmpp:sid:0", "urn:xmpp:mam:2"},
		resource: func(r *rand.Rand) string {
			if r.IntN(3) == 0 {
				return "profanity." + randString(r, upperNum, 4)
			}
			return "profanity"
		},
	},
	{
		name: "Monal", version: "6.4.6", category: "client", typ: "phone",
		node: "http://monal-im.org/", weight: 10, avatarPEP: true, uuidIDs: true,
		features: []string{
			"eu.siacs.conversations.axolotl.devicelist+notify",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/muc",
			"jabber:iq:version",
			"jabber:x:oob",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:jingle-message:0",
			"urn:xmpp:jingle:1",
			"urn:xmpp:jingle:apps:rtp:1",
			"urn:xmpp:jingle:apps:rtp:audio",
			"urn:xmpp:jingle:transports:ice-udp:1",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
			"urn:xmpp:mds:displayed:0+notify",
			"urn:xmpp:bookmarks:1+notify",
		},
		extras: []string{"urn:xmpp:jingle:apps:dtls:0"},
		resource: func(r *rand.Rand) string {
			return "Monal-iOS." + randString(r, hexdig, 8)
		},
	},
	{
		name: "Psi+", version: "1.5.1650", category: "client", typ: "pc",
		node: "https://psi-plus.com", weight: 10, priority: true,
		features: []string{
			"http://jabber.org/protocol/bytestreams",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/chatstates",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/ibb",
			"http://jabber.org/protocol/mood+notify",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/si",
			"http://jabber.org/protocol/si/profile/file-transfer",
			"http://jabber.org/protocol/tune+notify",
			"jabber:iq:last",
			"jabber:iq:version",
			"jabber:x:data",
			"urn:xmpp:avatar:metadata+notify",
			"urn:xmpp:bob",
			"urn:xmpp:chat-markers:0",
			"urn:xmpp:message-correct:0",
			"urn:xmpp:ping",
			"urn:xmpp:receipts",
			"urn:xmpp:time",
		},
		extras: []string{"urn:xmpp:reactions:0"},
		resource: func(r *rand.Rand) string {
			if r.IntN(2) == 0 {
				return "Psi+"
			}
			return "psi." + randString(r, alnum, 5)
		},
	},
}

// clientVersions lists, for every profile, the base version and one
// version per extra feature, so the world holds a dozen distinct caps vers.
var clientVersions = func() []*client {
	var out []*client
	for _, p := range profiles {
		out = append(out, newClient(p, nil))
		for _, e := range p.extras {
			out = append(out, newClient(p, []string{e}))
		}
	}
	return out
}()

func newClient(p *profile, extra []string) *client {
	f := slices.Concat(p.features, extra)
	slices.Sort(f)
	f = slices.Compact(f)
	c := &client{profile: p, features: f}
	c.ver = capsVer(p.category, p.typ, p.name, f)
	return c
}

// capsVer computes the XEP-0115 verification string for one identity and
// a sorted feature list.
func capsVer(category, typ, name string, sortedFeatures []string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s/%s//%s<", category, typ, name)
	for _, f := range sortedFeatures {
		s.WriteString(f)
		s.WriteByte('<')
	}
	sum := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// pickClient chooses a client version by profile weight.
func pickClient(r *rand.Rand) *client {
	total := 0
	for _, p := range profiles {
		total += p.weight
	}
	n := r.IntN(total)
	var p *profile
	for _, q := range profiles {
		if n < q.weight {
			p = q
			break
		}
		n -= q.weight
	}
	var vs []*client
	for _, c := range clientVersions {
		if c.profile == p {
			vs = append(vs, c)
		}
	}
	return vs[r.IntN(len(vs))]
}

// stanzaID makes an id in the style of the client.
func (c *client) stanzaID(r *rand.Rand) string {
	if c.uuidIDs {
		return uuid4(r)
	}
	return randString(r, b64url, 22)
}

func uuid4(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// serverFeatures is what the simulated Prosody advertises on its domain.
var serverFeatures = []string{
	"http://jabber.org/protocol/commands",
	"http://jabber.org/protocol/disco#info",
	"http://jabber.org/protocol/disco#items",
	"jabber:iq:last",
	"jabber:iq:private",
	"jabber:iq:roster",
	"jabber:iq:time",
	"jabber:iq:version",
	"msgoffline",
	"urn:xmpp:blocking",
	"urn:xmpp:carbons:2",
	"urn:xmpp:carbons:rules:0",
	"urn:xmpp:mam:2",
	"urn:xmpp:ping",
	"urn:xmpp:time",
	"vcard-temp",
}

// accountFeatures is what a bare account JID advertises (Prosody mod_pep).
var accountFeatures = []string{
	"http://jabber.org/protocol/disco#info",
	"http://jabber.org/protocol/disco#items",
	"http://jabber.org/protocol/pubsub",
	"http://jabber.org/protocol/pubsub#publish",
	"http://jabber.org/protocol/pubsub#retrieve-items",
	"urn:xmpp:mam:2",
	"vcard-temp",
}
