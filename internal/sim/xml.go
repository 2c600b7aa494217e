package sim

import (
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"
)

// builder writes XML the way Prosody serializes it: single-quoted
// attributes, no namespace prefixes, self-closing empty elements.
type builder struct {
	strings.Builder
}

var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// attrs writes key/value pairs; a pair whose value is empty is skipped.
func (b *builder) attrs(kv []string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(kv[i])
		b.WriteString("='")
		attrEscaper.WriteString(b, kv[i+1])
		b.WriteByte('\'')
	}
}

func (b *builder) open(name string, kv ...string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.attrs(kv)
	b.WriteByte('>')
}

func (b *builder) empty(name string, kv ...string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.attrs(kv)
	b.WriteString("/>")
}

func (b *builder) close(name string) {
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// elem writes <name kv...>text</name>.
func (b *builder) elem(name, text string, kv ...string) {
	b.open(name, kv...)
	textEscaper.WriteString(b, text)
	b.close(name)
}

func (b *builder) bytes() []byte { return []byte(b.String()) }

// node is a generic parsed XML element.
type node struct {
	XMLName xml.Name
	Attr    []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attr {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == n.XMLName.Space) {
			return a.Value
		}
	}
	return ""
}

// child returns the first child with the given namespace and local name,
// or nil. An empty space matches any namespace.
func (n *node) child(space, local string) *node {
	for i := range n.Nodes {
		c := &n.Nodes[i]
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// maxStanza bounds what Handle parses; a bigger stanza is dropped.
const maxStanza = 256 << 10

func parseStanza(raw []byte) (*node, error) {
	var n node
	if err := xml.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// jid is a split JID; no PRECIS, the simulation only needs ASCII.
type jid struct {
	local, domain, resource string
}

func parseJID(s string) (jid, bool) {
	if s == "" || len(s) > 3071 {
		return jid{}, false
	}
	var j jid
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		j.resource = rest[i+1:]
		rest = rest[:i]
		if j.resource == "" {
			return jid{}, false
		}
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		j.local = strings.ToLower(rest[:i])
		rest = rest[i+1:]
		if j.local == "" {
			return jid{}, false
		}
	}
	j.domain = strings.ToLower(strings.TrimSuffix(rest, "."))
	if j.domain == "" || strings.ContainsAny(j.domain, "@/ ") {
		return jid{}, false
	}
	return j, true
}

func (j jid) bare() string {
	if j.local == "" {
		return j.domain
	}
	return j.local + "@" + j.domain
}

func (j jid) String() string {
	if j.resource == "" {
		return j.bare()
	}
	return j.bare() + "/" + j.resource
}

const (
	nsStanzas   = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsCaps      = "http://jabber.org/protocol/caps"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsPing      = "urn:xmpp:ping"
	nsReceipts  = "urn:xmpp:receipts"
	nsMarkers   = "urn:xmpp:chat-markers:0"
	nsChatState = "http://jabber.org/protocol/chatstates"
	nsVCard     = "vcard-temp"
	nsVCardUpd  = "vcard-temp:x:update"
	nsPubSub    = "http://jabber.org/protocol/pubsub"
	nsAvatarMD  = "urn:xmpp:avatar:metadata"
	nsHints     = "urn:xmpp:hints"
	nsSID       = "urn:xmpp:sid:0"
	nsIdle      = "urn:xmpp:idle:1"
	nsDelay     = "urn:xmpp:delay"
	nsVersion   = "jabber:iq:version"
)

func itoa(n int) string { return strconv.Itoa(n) }

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
