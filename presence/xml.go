package presence

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Namespaces the mirror reads or writes.
const (
	// NS is the namespace of the gateway-to-gateway mirror elements.
	NS       = "urn:xmpp:isthmus:mirror:0"
	nsServer = "jabber:server"
	nsDelay  = "urn:xmpp:delay"
	nsXDelay = "jabber:x:delay"
	nsCaps   = "http://jabber.org/protocol/caps"
	nsDisco  = "http://jabber.org/protocol/disco#info"
	nsData   = "jabber:x:data"
	nsXML    = "http://www.w3.org/XML/1998/namespace"
)

// ErrMalformed is returned (wrapped) for stanzas the mirror cannot parse.
var ErrMalformed = errors.New("presence: malformed stanza")

// node is one XML element (or, with local == "", a run of text).
type node struct {
	space, local string
	attrs        []xml.Attr // without namespace declarations
	kids         []node
	text         string // text node only
}

func (n *node) attr(name string) string {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// child returns the first child element in namespace space named local.
func (n *node) child(space, local string) *node {
	for i := range n.kids {
		k := &n.kids[i]
		if k.local == local && k.space == space {
			return k
		}
	}
	return nil
}

// textOf returns the concatenated text content of n's direct text children.
func (n *node) textOf() string {
	var b strings.Builder
	for _, k := range n.kids {
		if k.local == "" {
			b.WriteString(k.text)
		}
	}
	return b.String()
}

// parseElement parses raw (one element) into a tree. The default namespace
// of an unprefixed top element without xmlns is jabber:server, as inside an
// S2S stream.
func parseElement(raw []byte) (node, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var stack []*node
	var root node
	seen := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return node{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := node{space: t.Name.Space, local: t.Name.Local}
			if n.space == "" || n.space == nsServer {
				n.space = nsServer
			}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				if a.Name.Space == "xml" {
					a.Name.Space = nsXML
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) == 0 {
				if seen {
					return node{}, fmt.Errorf("%w: several elements", ErrMalformed)
				}
				seen = true
				root = n
				stack = append(stack, &root)
				continue
			}
			p := stack[len(stack)-1]
			p.kids = append(p.kids, n)
			stack = append(stack, &p.kids[len(p.kids)-1])
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			p := stack[len(stack)-1]
			if len(stack) == 1 && len(bytes.TrimSpace(t)) == 0 {
				continue // indentation between a stanza's children
			}
			p.kids = append(p.kids, node{text: string(t)})
		}
	}
	if !seen || len(stack) != 0 {
		return node{}, fmt.Errorf("%w: no complete element", ErrMalformed)
	}
	return root, nil
}

// writeNode serializes n canonically: attributes sorted, single quotes,
// xmlns written only where the namespace changes.
func writeNode(b *strings.Builder, n *node, parentSpace string) {
	if n.local == "" {
		escape(b, n.text, false)
		return
	}
	b.WriteByte('<')
	b.WriteString(n.local)
	if n.space != parentSpace {
		b.WriteString(" xmlns='")
		escape(b, n.space, true)
		b.WriteByte('\'')
	}
	attrs := append([]xml.Attr(nil), n.attrs...)
	sort.Slice(attrs, func(i, j int) bool {
		if attrs[i].Name.Space != attrs[j].Name.Space {
			return attrs[i].Name.Space < attrs[j].Name.Space
		}
		return attrs[i].Name.Local < attrs[j].Name.Local
	})
	for i, a := range attrs {
		b.WriteByte(' ')
		switch a.Name.Space {
		case "":
		case nsXML:
			b.WriteString("xml:")
		default:
			fmt.Fprintf(b, "xmlns:p%d='", i)
			escape(b, a.Name.Space, true)
			fmt.Fprintf(b, "' p%d:", i)
		}
		b.WriteString(a.Name.Local)
		b.WriteString("='")
		escape(b, a.Value, true)
		b.WriteByte('\'')
	}
	if len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for i := range n.kids {
		writeNode(b, &n.kids[i], n.space)
	}
	b.WriteString("</")
	b.WriteString(n.local)
	b.WriteByte('>')
}

func escape(b *strings.Builder, s string, attr bool) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\'':
			if attr {
				b.WriteString("&apos;")
			} else {
				b.WriteRune(r)
			}
		case '"':
			if attr {
				b.WriteString("&quot;")
			} else {
				b.WriteRune(r)
			}
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
}

// payload is the canonical serialization of a presence's children, without
// delay stamps and mirror elements: what "the same presence" means.
// The children are sorted: their order carries no meaning in presence.
func payload(n *node) string { return strings.Join(payloadKids(n), "") }

// payloadKids returns the children of payload(n), each serialized, sorted.
func payloadKids(n *node) []string {
	var kids []string
	for i := range n.kids {
		k := &n.kids[i]
		if k.local == "" {
			continue
		}
		if k.space == NS || (k.local == "delay" && k.space == nsDelay) || (k.local == "x" && k.space == nsXDelay) {
			continue
		}
		var b strings.Builder
		writeNode(&b, k, nsServer)
		kids = append(kids, b.String())
	}
	sort.Strings(kids)
	return kids
}

// hasNS reports whether n or any descendant element is in namespace space.
func hasNS(n *node, space string) bool {
	if n.local != "" && n.space == space {
		return true
	}
	for i := range n.kids {
		if hasNS(&n.kids[i], space) {
			return true
		}
	}
	return false
}

// stanzaXML builds <name from to [type] [id]>inner</name> as in a
// jabber:server stream.
func stanzaXML(name, from, to, typ, id, inner string) []byte {
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(name)
	for _, a := range [][2]string{{"from", from}, {"to", to}, {"type", typ}, {"id", id}} {
		if a[1] == "" {
			continue
		}
		b.WriteString(" " + a[0] + "='")
		escape(&b, a[1], true)
		b.WriteByte('\'')
	}
	if inner == "" {
		b.WriteString("/>")
		return []byte(b.String())
	}
	b.WriteByte('>')
	b.WriteString(inner)
	b.WriteString("</" + name + ">")
	return []byte(b.String())
}
