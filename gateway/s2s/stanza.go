package s2s

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmpp/jid"
)

// Namespaces used on S2S streams.
const (
	NSServer    = "jabber:server"
	NSStream    = "http://etherx.jabber.org/streams"
	NSDialback  = "jabber:server:dialback"
	NSDBFeature = "urn:xmpp:features:dialback"
	NSTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	NSStanzas   = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSStreams   = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Stanza error conditions (RFC 6120 §8.3.3) used by the gateway.
const (
	CondBadRequest            = "bad-request"
	CondFeatureNotImplemented = "feature-not-implemented"
	CondInternalServerError   = "internal-server-error"
	CondItemNotFound          = "item-not-found"
	CondJIDMalformed          = "jid-malformed"
	CondNotAllowed            = "not-allowed"
	CondPolicyViolation       = "policy-violation"
	CondRecipientUnavailable  = "recipient-unavailable"
	CondRemoteServerNotFound  = "remote-server-not-found"
	CondRemoteServerTimeout   = "remote-server-timeout"
	CondResourceConstraint    = "resource-constraint"
	CondServiceUnavailable    = "service-unavailable"
	CondUndefinedCondition    = "undefined-condition"
)

// errorType is the <error type=.../> that goes with each stanza condition.
var errorType = map[string]string{
	CondBadRequest:            "modify",
	CondFeatureNotImplemented: "cancel",
	CondInternalServerError:   "cancel",
	CondItemNotFound:          "cancel",
	CondJIDMalformed:          "modify",
	CondNotAllowed:            "cancel",
	CondPolicyViolation:       "modify",
	CondRecipientUnavailable:  "wait",
	CondRemoteServerNotFound:  "cancel",
	CondRemoteServerTimeout:   "wait",
	CondResourceConstraint:    "wait",
	CondServiceUnavailable:    "cancel",
	CondUndefinedCondition:    "cancel",
}

// Stanza is one top-level stanza of a jabber:server stream.
type Stanza struct {
	Name               string // "message", "presence" or "iq"
	From, To, Type, ID string // attributes as sent ("" if absent), XML-unescaped
	// Raw is the element exactly as it appears in a jabber:server stream
	// (no xmlns needed on the top element; children keep their xmlns
	// declarations). len(Raw) is what the gateway counts as "raw bytes".
	Raw []byte
}

// ErrNotStanza is returned (wrapped) by ParseStanza for input that is not a
// single message, presence or iq element.
var ErrNotStanza = errors.New("s2s: not a stanza")

// isStanzaName reports whether local is one of the three stanza names.
func isStanzaName(local string) bool {
	return local == "message" || local == "presence" || local == "iq"
}

// stanzaFromStart fills the attribute fields of a Stanza from its start tag.
func stanzaFromStart(se xml.StartElement, raw []byte) Stanza {
	st := Stanza{Name: se.Name.Local, Raw: raw}
	var seen [4]bool // the first of duplicate attributes counts (such a stanza is refused)
	for _, a := range se.Attr {
		if a.Name.Space != "" {
			continue
		}
		var p *string
		i := 0
		switch a.Name.Local {
		case "from":
			p, i = &st.From, 0
		case "to":
			p, i = &st.To, 1
		case "type":
			p, i = &st.Type, 2
		case "id":
			p, i = &st.ID, 3
		default:
			continue
		}
		if !seen[i] {
			*p, seen[i] = a.Value, true
		}
	}
	return st
}

// ParseStanza parses one serialized stanza, as it would appear in a
// jabber:server stream. It holds it to the same rules as a stream (the
// reader of inbound streams does the work): namespace-well-formed XML 1.0
// (no duplicate attributes, every prefix bound on the stanza itself, no
// characters outside XML's Char), none of the constructs RFC 6120 §11.1
// forbids (comments, processing instructions, DOCTYPE, entities), exactly
// one message, presence or iq element written without a prefix, and no
// text around it but whitespace, which is trimmed; Raw is a copy of the
// element's bytes. It does not apply size limits.
func ParseStanza(raw []byte) (Stanza, error) {
	n := max(len(raw), 1)
	x := newXMLReader(bytes.NewReader(raw), Limits{MaxStanzaSize: n, MaxTextSize: n, MaxAttrs: n, MaxDepth: 1024})
	x.inbound = true
	// Inside a jabber:server stream whose header declares nothing else.
	x.stack = []frame{{qname: "\x00", decls: []xml.Attr{{Value: NSServer}}}}
	x.started, x.rec.depth = true, 1
	el, err := x.next()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && len(x.stack) == 1:
		return Stanza{}, fmt.Errorf("%w: no element", ErrNotStanza)
	case errors.Is(err, &StreamError{Cond: SErrUnsupportedStanzaType}):
		return Stanza{}, fmt.Errorf("%w: %v", ErrNotStanza, err)
	case err != nil:
		return Stanza{}, fmt.Errorf("s2s: parse stanza: %w", err)
	case el.Stanza == nil:
		return Stanza{}, fmt.Errorf("%w: <%s xmlns=%q>", ErrNotStanza, el.Node.Name.Local, el.Node.Name.Space)
	case el.Fault != nil:
		return Stanza{}, fmt.Errorf("s2s: parse stanza: %s (%s)", el.Fault.Text, el.Fault.Detail)
	}
	switch _, err := x.next(); {
	case errors.Is(err, io.ErrUnexpectedEOF) && len(x.stack) == 1:
		return *el.Stanza, nil
	case err == nil:
		return Stanza{}, fmt.Errorf("%w: several elements", ErrNotStanza)
	default:
		return Stanza{}, fmt.Errorf("s2s: parse stanza: after the element: %w", err)
	}
}

// Domain returns the domainpart of the JID j, normalized (lowercase), or ""
// if j is not a valid JID.
func Domain(j string) string {
	if j == "" {
		return ""
	}
	p, err := jid.Parse(j)
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Domainpart())
}

// ErrorReply builds the bounce for st with the stanza error condition cond
// (one of the Cond constants): from and to swapped, type='error', the same
// id, the original payload kept for messages, and
// <error type='...'><COND xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>.
//
// ok is false when no bounce must be sent: st is itself an error, an iq
// result, a presence other than a subscription request (RFC 6121 says
// undeliverable presence is dropped silently), or it has no from address.
func ErrorReply(st Stanza, cond string) (Stanza, bool) {
	if st.Type == "error" || st.From == "" {
		return Stanza{}, false
	}
	switch st.Name {
	case "message":
	case "iq":
		if st.Type != "get" && st.Type != "set" {
			return Stanza{}, false
		}
	case "presence":
		if st.Type != "subscribe" {
			return Stanza{}, false
		}
	default:
		return Stanza{}, false
	}
	etype, ok := errorType[cond]
	if !ok {
		etype = "cancel"
	}
	var b bytes.Buffer
	b.WriteString("<")
	b.WriteString(st.Name)
	writeAttr(&b, "from", st.To)
	writeAttr(&b, "to", st.From)
	writeAttr(&b, "type", "error")
	if st.ID != "" {
		writeAttr(&b, "id", st.ID)
	}
	var inner []byte
	if st.Name == "message" {
		var decls []xml.Attr
		inner, decls = innerXML(st.Raw)
		for _, a := range decls {
			writeAttr(&b, "xmlns:"+a.Name.Local, a.Value)
		}
	}
	b.WriteString(">")
	b.Write(inner)
	b.WriteString("<error type='")
	b.WriteString(etype)
	b.WriteString("'><")
	b.WriteString(cond)
	b.WriteString(" xmlns='" + NSStanzas + "'/></error></")
	b.WriteString(st.Name)
	b.WriteString(">")
	return Stanza{Name: st.Name, From: st.To, To: st.From, Type: "error", ID: st.ID, Raw: b.Bytes()}, true
}

// innerXML returns the bytes between the start and end tag of the single
// element raw, and the prefixed namespace declarations of its start tag
// (which the children may use). Errors give nil.
func innerXML(raw []byte) ([]byte, []xml.Attr) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var (
		depth      int
		begin, end int64 = -1, -1
		decls      []xml.Attr
	)
	for {
		before := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				begin = d.InputOffset()
				for _, a := range t.Attr {
					if a.Name.Space == "xmlns" {
						decls = append(decls, a)
					}
				}
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				end = before
			}
		}
	}
	if begin < 0 || end < begin {
		return nil, nil
	}
	return raw[begin:end], decls
}

// writeAttr writes " name='value'" with value escaped.
func writeAttr(b *bytes.Buffer, name, value string) {
	b.WriteString(" ")
	b.WriteString(name)
	b.WriteString("='")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString("'")
}
