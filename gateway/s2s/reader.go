package s2s

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// StreamError is a stream-level error condition (RFC 6120 §4.9.3). Reading
// functions return it (wrapped) when the peer violated the protocol; the
// stream owner then sends it and closes the stream.
type StreamError struct {
	Cond   string // e.g. "policy-violation"
	Text   string // for logs only, not sent
	Detail string // the limit or rule behind it (see Event.Detail); may be empty
}

func (e *StreamError) Error() string {
	if e.Text == "" {
		return "s2s: stream error " + e.Cond
	}
	return "s2s: stream error " + e.Cond + ": " + e.Text
}

// Is makes errors.Is(err, &StreamError{Cond: c}) match on the condition.
func (e *StreamError) Is(target error) bool {
	t, ok := target.(*StreamError)
	return ok && t.Cond == e.Cond
}

// Stream error conditions used here.
const (
	SErrBadFormat             = "bad-format"
	SErrConnectionTimeout     = "connection-timeout"
	SErrHostUnknown           = "host-unknown"
	SErrImproperAddressing    = "improper-addressing"
	SErrInternalServerError   = "internal-server-error"
	SErrInvalidFrom           = "invalid-from"
	SErrInvalidNamespace      = "invalid-namespace"
	SErrNotAuthorized         = "not-authorized"
	SErrNotWellFormed         = "not-well-formed"
	SErrPolicyViolation       = "policy-violation"
	SErrRemoteConnectionFail  = "remote-connection-failed"
	SErrResourceConstraint    = "resource-constraint"
	SErrRestrictedXML         = "restricted-xml"
	SErrSystemShutdown        = "system-shutdown"
	SErrUndefinedCondition    = "undefined-condition"
	SErrUnsupportedStanzaType = "unsupported-stanza-type"
	SErrUnsupportedVersion    = "unsupported-version"
)

func serr(cond, format string, args ...any) error {
	return &StreamError{Cond: cond, Text: fmt.Sprintf(format, args...)}
}

// lerr is a stream error caused by a limit or trust rule named detail.
func lerr(cond, detail, format string, args ...any) error {
	return &StreamError{Cond: cond, Detail: detail, Text: fmt.Sprintf(format, args...)}
}

// node is a small element tree, used for the non-stanza top-level elements
// (features, dialback, TLS, stream errors), which are small.
type node struct {
	Name     xml.Name
	Attr     []xml.Attr
	Text     string
	Children []*node
}

func (n *node) attr(local string) string {
	for _, a := range n.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (n *node) child(space, local string) *node {
	for _, c := range n.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c
		}
	}
	return nil
}

// element is one top-level element read from a stream: a stanza (Stanza set)
// or another element (Node set). A stanza refused on its own has Fault set
// and only the attributes of its start tag (no Raw).
type element struct {
	Stanza *Stanza
	Node   *node
	Fault  *fault
}

// fault is a refusal confined to one stanza: the stanza is dropped (and
// bounced) and the stream goes on. The same fault in the stream header or
// in a non-stanza element is a stream error ([fault.streamError]).
type fault struct {
	Cond   string // stanza error condition: policy-violation (a limit) or bad-request (XML)
	Detail string // the limit or rule (see Event.Detail)
	Text   string // for logs
}

// limitDetails are the Details of faults that are limits, not XML rules.
var limitDetails = map[string]bool{"stanza-size": true, "depth": true, "attributes": true, "text-size": true, "name-size": true}

func newFault(detail, format string, args ...any) *fault {
	cond := CondBadRequest
	if limitDetails[detail] {
		cond = CondPolicyViolation
	}
	return &fault{Cond: cond, Detail: detail, Text: fmt.Sprintf(format, args...)}
}

// streamError is the stream error for f where it cannot cost one stanza
// only: <policy-violation/> for a limit, <not-well-formed/> otherwise
// (RFC 6120 §4.9.3.13 covers XML and Namespaces in XML).
func (f *fault) streamError() error {
	cond := SErrNotWellFormed
	if f.Cond == CondPolicyViolation {
		cond = SErrPolicyViolation
	}
	return &StreamError{Cond: cond, Detail: f.Detail, Text: f.Text}
}

// Namespace names fixed by Namespaces in XML 1.0.
const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// frame is one open element: its name as written, and the namespace
// declarations of its start tag (prefix in Name.Local, "" for the default
// namespace; namespace name in Value). Frames of a skipped element keep
// only the hash of the name.
type frame struct {
	qname string
	hash  uint64
	decls []xml.Attr
}

// xmlReader reads one XML stream: the header, then top-level elements. It
// reads raw tokens and does the namespace processing itself, strictly
// (Namespaces in XML 1.0): encoding/xml lets through duplicate attributes,
// unbound prefixes, xmlns:p=” and rebinding of the xml prefix, all of
// which strict parsers such as expat (Prosody's) refuse.
type xmlReader struct {
	rec      *recorder
	dec      *xml.Decoder
	maxSize  int
	maxDepth int
	maxAttrs int
	maxText  int
	// inbound: only stanzas and the elements a receiving server expects
	// (dialback, STARTTLS, stream errors) may start at the top level;
	// anything else is refused at its start tag, not read to its end.
	inbound bool
	started bool // the stream header has been read

	stack    []frame      // open elements, the stream header first
	seed     maphash.Seed // for frame.hash
	skipping bool         // the current stanza is refused: only find its end
	prefix   string       // the prefix of the last start tag's name, as written
	hdrUse   []xml.Attr   // declarations of the stream header the current element relies on
}

// headerAttrs is the least number of attributes a stream header may have
// whatever Limits.MaxAttrs says: Prosody's carry eight.
const headerAttrs = 32

func newXMLReader(r io.Reader, lim Limits) *xmlReader {
	lim = lim.withDefaults()
	rec := newRecorder(r, lim)
	d := xml.NewDecoder(rec)
	d.Strict = true
	return &xmlReader{rec: rec, dec: d, maxSize: lim.MaxStanzaSize, maxDepth: lim.MaxDepth,
		maxAttrs: lim.MaxAttrs, maxText: lim.MaxTextSize, seed: maphash.MakeSeed()}
}

// maxOpen bounds the elements open at once, in a refused stanza too:
// keeping track of them costs memory, so deeper nesting ends the stream.
func (x *xmlReader) maxOpen() int { return max(1024, 16*x.maxDepth) }

func qualified(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// token reads one token and maps errors to stream errors. A fault is a
// finding confined to the element being read.
func (x *xmlReader) token() (xml.Token, *fault, error) {
	tok, err := x.dec.RawToken()
	if err != nil {
		var synErr *xml.SyntaxError
		switch {
		case errors.Is(err, errNotXML):
			return nil, nil, serr(SErrNotWellFormed, "%v", err)
		case x.rec.err != nil && !errors.Is(x.rec.err, io.EOF):
			return nil, nil, x.rec.err // a read error (a deadline, a reset): no stream error
		case errors.As(err, &synErr):
			if errors.Is(err, io.ErrUnexpectedEOF) || synErr.Msg == "unexpected EOF" {
				return nil, nil, io.ErrUnexpectedEOF
			}
			if strings.HasPrefix(synErr.Msg, "invalid character entity &") && !strings.HasPrefix(synErr.Msg, "invalid character entity &#") {
				// RFC 6120 §11.1: no entity references but the five predefined.
				return nil, nil, lerr(SErrRestrictedXML, "restricted-xml", "%v", err)
			}
			return nil, nil, serr(SErrNotWellFormed, "%v", err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if len(x.stack) > 0 {
				return nil, nil, io.ErrUnexpectedEOF
			}
			return nil, nil, err
		default:
			// The decoder's own complaints (e.g. an XML declaration
			// with version 2.0) are not read errors.
			return nil, nil, serr(SErrNotWellFormed, "%v", err)
		}
	}
	var f *fault
	if d, text := x.rec.take(); d != "" {
		f = newFault(d, "%s", text)
	}
	switch t := tok.(type) {
	case xml.Comment, xml.Directive:
		return nil, nil, lerr(SErrRestrictedXML, "restricted-xml", "%T", tok)
	case xml.StartElement:
		x.prefix = t.Name.Space
		if len(x.stack) >= x.maxOpen() {
			return nil, nil, lerr(SErrPolicyViolation, "depth", "more than %d elements open", x.maxOpen())
		}
		q := qualified(t.Name)
		if x.skipping {
			x.stack = append(x.stack, frame{hash: maphash.String(x.seed, q)})
			return t, f, nil
		}
		out, nf := x.namespaces(t, q)
		if f == nil {
			f = nf
		}
		return out, f, nil
	case xml.EndElement:
		if len(x.stack) == 0 {
			return nil, nil, serr(SErrNotWellFormed, "end tag </%s> with no element open", qualified(t.Name))
		}
		top := x.stack[len(x.stack)-1]
		q := qualified(t.Name)
		if top.qname != "" && top.qname != q || top.qname == "" && top.hash != maphash.String(x.seed, q) {
			return nil, nil, serr(SErrNotWellFormed, "element <%s> closed by </%s>", top.qname, q)
		}
		if !x.skipping {
			t.Name = x.resolveElement(t.Name)
		}
		x.stack[len(x.stack)-1] = frame{}
		x.stack = x.stack[:len(x.stack)-1]
		return t, f, nil
	case xml.CharData:
		if f == nil && len(t) > x.maxText {
			f = newFault("text-size", "text of %d bytes, limit %d", len(t), x.maxText)
		}
	}
	return tok, f, nil
}

// lookup finds the namespace bound to prefix p ("" for the default
// namespace) in the open elements; it notes the declarations of the
// stream header that an element inside the stream relies on.
func (x *xmlReader) lookup(p string) (string, bool) {
	for i := len(x.stack) - 1; i >= 0; i-- {
		for _, d := range x.stack[i].decls {
			if d.Name.Local != p {
				continue
			}
			if i == 0 && p != "" && len(x.stack) > 1 && !slices.Contains(x.hdrUse, d) {
				x.hdrUse = append(x.hdrUse, d)
			}
			return d.Value, true
		}
	}
	return "", p == ""
}

// resolveElement turns an element name as written into its namespace and
// local name (an unbound prefix is left as the namespace: the element is
// refused anyway).
func (x *xmlReader) resolveElement(n xml.Name) xml.Name {
	switch n.Space {
	case "xml":
		n.Space = nsXML
	case "xmlns":
	default:
		if uri, ok := x.lookup(n.Space); ok {
			n.Space = uri
		}
	}
	return n
}

// namespaces checks the start tag t (name as written q) against XML 1.0
// and Namespaces in XML 1.0, opens its frame, and returns it with names
// resolved as xml.Decoder.Token would.
func (x *xmlReader) namespaces(t xml.StartElement, q string) (xml.StartElement, *fault) {
	var f *fault
	bad := func(detail, format string, args ...any) {
		if f == nil {
			f = newFault(detail, format, args...)
		}
	}
	if !qname(t.Name) {
		bad("name", "<%s>: not a qualified name", q)
	}
	var decls []xml.Attr
	var dup, expanded nameSet
	for _, a := range t.Attr {
		if !qname(a.Name) {
			bad("name", "attribute %s: not a qualified name", qualified(a.Name))
		}
		if dup.seen(a.Name) {
			bad("duplicate-attribute", "<%s>: attribute %s twice", q, qualified(a.Name))
		}
		switch {
		case a.Name.Space == "xmlns":
			p := a.Name.Local
			switch {
			case p == "xmlns":
				bad("namespace-declaration", "<%s>: the xmlns prefix declared", q)
			case p == "xml" && a.Value != nsXML:
				bad("namespace-declaration", "<%s>: the xml prefix bound to %q", q, a.Value)
			case p != "xml" && (a.Value == nsXML || a.Value == nsXMLNS):
				bad("namespace-declaration", "<%s>: prefix %s bound to %q", q, p, a.Value)
			case a.Value == "":
				bad("namespace-declaration", "<%s>: xmlns:%s='' (undeclaring a prefix is not XML 1.0)", q, p)
			case strings.ContainsAny(a.Value, " \t\r\n"):
				bad("namespace-name", "<%s>: namespace name %q with whitespace is not a URI reference", q, a.Value)
			}
			decls = append(decls, xml.Attr{Name: xml.Name{Local: p}, Value: a.Value})
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if a.Value == nsXML || a.Value == nsXMLNS {
				bad("namespace-declaration", "<%s>: default namespace %q", q, a.Value)
			}
			if strings.ContainsAny(a.Value, " \t\r\n") {
				bad("namespace-name", "<%s>: namespace name %q with whitespace is not a URI reference", q, a.Value)
			}
			decls = append(decls, xml.Attr{Value: a.Value})
		}
	}
	x.stack = append(x.stack, frame{qname: q, hash: maphash.String(x.seed, q), decls: decls})
	out := t // RawToken gives each start tag its own Attr slice: resolved in place
	if t.Name.Space == "xmlns" {
		bad("namespace-prefix", "<%s>: element with the xmlns prefix", q)
	} else if _, ok := x.lookup(t.Name.Space); !ok && t.Name.Space != "xml" {
		bad("unbound-prefix", "<%s>: prefix %s not declared", q, t.Name.Space)
	}
	out.Name = x.resolveElement(t.Name)
	for i, a := range t.Attr {
		switch p := a.Name.Space; p {
		case "", "xmlns":
		case "xml":
			out.Attr[i].Name.Space = nsXML
		default:
			uri, ok := x.lookup(p)
			if !ok {
				bad("unbound-prefix", "<%s>: attribute prefix %s not declared", q, p)
				continue
			}
			out.Attr[i].Name.Space = uri
			// Prefixed attributes have a namespace, unprefixed ones
			// none: only prefixed ones can be the same name.
			if expanded.seen(out.Attr[i].Name) {
				bad("duplicate-attribute", "<%s>: attribute %s is a second {%s}%s", q, qualified(a.Name), uri, a.Name.Local)
			}
		}
	}
	return out, f
}

// nameSet finds a repeated name among the attributes of one tag: a
// linear scan for the usual few, a map beyond.
type nameSet struct {
	few  [16]xml.Name
	n    int
	many map[xml.Name]bool
}

// seen adds n and reports whether it was there already.
func (s *nameSet) seen(n xml.Name) bool {
	if s.many == nil && s.n < len(s.few) {
		if slices.Contains(s.few[:s.n], n) {
			return true
		}
		s.few[s.n] = n
		s.n++
		return false
	}
	if s.many == nil {
		s.many = make(map[xml.Name]bool, 2*len(s.few))
		for _, m := range s.few {
			s.many[m] = true
		}
	}
	if s.many[n] {
		return true
	}
	s.many[n] = true
	return false
}

// qname reports whether a name as encoding/xml's RawToken splits it is a
// qualified name (Namespaces in XML 1.0): the decoder checked that the
// whole is an XML Name, but leaves a colon at either end in Local and does
// not check that the part after the colon starts like a name.
func qname(n xml.Name) bool {
	if strings.Contains(n.Local, ":") {
		return false
	}
	if n.Space == "" {
		return true
	}
	c, _ := utf8.DecodeRuneInString(n.Local)
	switch {
	case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		return true
	case c < utf8.RuneSelf:
		return false
	}
	// The decoder's table of name start characters (the one expat uses
	// too), asked through the decoder.
	_, err := xml.NewDecoder(strings.NewReader("<" + string(c) + "/>")).RawToken()
	return err == nil
}

// header reads the XML declaration (optional) and the stream header.
func (x *xmlReader) header() (xml.StartElement, error) {
	first := true
	for {
		tok, f, err := x.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if f != nil {
			return xml.StartElement{}, f.streamError()
		}
		x.rec.trim(x.dec.InputOffset())
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return xml.StartElement{}, lerr(SErrRestrictedXML, "restricted-xml", "processing instruction")
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, serr(SErrNotWellFormed, "text before the stream header")
			}
		case xml.StartElement:
			if t.Name.Space != NSStream || t.Name.Local != "stream" {
				return t.Copy(), serr(SErrInvalidNamespace, "stream header <%s xmlns=%q>", t.Name.Local, t.Name.Space)
			}
			var ns string
			for _, a := range t.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					ns = a.Value
				}
			}
			if ns != NSServer {
				return t.Copy(), serr(SErrInvalidNamespace, "default namespace %q", ns)
			}
			if v := (&node{Attr: t.Attr}).attr("version"); v != "" && !supportedVersion(v) {
				return t.Copy(), serr(SErrUnsupportedVersion, "version %q", v)
			}
			x.started = true
			return t.Copy(), nil
		case xml.EndElement:
			return xml.StartElement{}, serr(SErrNotWellFormed, "end tag before the stream header")
		}
		first = false
	}
}

// errStreamEnd is returned by next when the peer closed the stream with
// </stream:stream>.
var errStreamEnd = errors.New("s2s: stream closed by peer")

// next reads the next top-level element, skipping whitespace. It returns
// errStreamEnd at </stream:stream> and a *StreamError on violations; a
// stanza refused on its own comes with element.Fault set.
func (x *xmlReader) next() (element, error) {
	for {
		before := x.dec.InputOffset()
		tok, f, err := x.token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if f != nil {
				return element{}, f.streamError()
			}
			if len(bytes.TrimSpace(t)) != 0 {
				return element{}, serr(SErrNotWellFormed, "text between stanzas")
			}
			x.rec.trim(x.dec.InputOffset())
		case xml.ProcInst:
			return element{}, lerr(SErrRestrictedXML, "restricted-xml", "processing instruction")
		case xml.EndElement:
			return element{}, errStreamEnd
		case xml.StartElement:
			if x.inbound && !inboundRoot(t.Name) {
				return element{}, serr(SErrUnsupportedStanzaType, "<%s xmlns=%q>", t.Name.Local, t.Name.Space)
			}
			if x.inbound && x.prefix != "" && t.Name.Space == NSServer {
				return element{}, serr(SErrUnsupportedStanzaType, "prefixed stanza element <%s:%s>", x.prefix, t.Name.Local)
			}
			return x.element(t, before, f)
		}
	}
}

// element reads the rest of the top-level element that starts with se at
// input offset start; f is a fault of its start tag. A stanza with a fault
// is read to its end without being kept and returned with Fault set; a
// fault in another element is a stream error.
func (x *xmlReader) element(se xml.StartElement, start int64, f *fault) (element, error) {
	isStanza := se.Name.Space == NSServer && isStanzaName(se.Name.Local)
	if f != nil && !isStanza {
		return element{}, f.streamError()
	}
	var root *node
	var stack []*node
	if !isStanza {
		root = &node{Name: se.Name, Attr: append([]xml.Attr(nil), se.Attr...)}
		stack = append(stack, root)
	}
	var st Stanza
	if isStanza {
		st = stanzaFromStart(se, nil)
	}
	refuse := func(nf *fault) {
		if f == nil {
			f = nf
		}
		x.skipping, x.rec.skip = true, true
	}
	if f != nil {
		refuse(f)
	}
	defer func() { x.skipping, x.hdrUse = false, x.hdrUse[:0] }()
	depth := 1
	for depth > 0 {
		tok, tf, err := x.token()
		if err != nil {
			return element{}, err
		}
		if tf != nil {
			if !isStanza {
				return element{}, tf.streamError()
			}
			refuse(tf)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > x.maxDepth && !x.skipping {
				nf := newFault("depth", "nesting deeper than %d", x.maxDepth)
				if !isStanza {
					return element{}, nf.streamError()
				}
				refuse(nf)
			}
			if !isStanza {
				n := &node{Name: t.Name, Attr: append([]xml.Attr(nil), t.Attr...)}
				top := stack[len(stack)-1]
				top.Children = append(top.Children, n)
				stack = append(stack, n)
			}
		case xml.EndElement:
			depth--
			if !isStanza {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if !isStanza {
				top := stack[len(stack)-1]
				top.Text += string(t)
			}
		case xml.ProcInst:
			return element{}, lerr(SErrRestrictedXML, "restricted-xml", "processing instruction")
		}
	}
	end := x.dec.InputOffset()
	if f == nil && int(end-start) > x.maxSize {
		nf := newFault("stanza-size", "element of %d bytes, limit %d", end-start, x.maxSize)
		if !isStanza {
			return element{}, nf.streamError()
		}
		refuse(nf)
	}
	if f != nil {
		x.rec.trim(end)
		return element{Stanza: &st, Fault: f}, nil
	}
	raw := x.rec.slice(start, end)
	if isStanza {
		st.Raw = selfContained(raw, st.Name, x.hdrUse)
	}
	x.rec.trim(end)
	if isStanza {
		return element{Stanza: &st}, nil
	}
	return element{Node: root}, nil
}

// selfContained returns a copy of the stanza raw (written as <name ...>)
// with the prefixes it uses from the stream header (decls) declared on its
// own start tag, so that its bytes are namespace-well-formed on their own:
// the stream it is written into (or a parser that gets it alone) may bind
// them differently or not at all.
func selfContained(raw []byte, name string, decls []xml.Attr) []byte {
	if len(decls) == 0 || !bytes.HasPrefix(raw, []byte("<"+name)) {
		return bytes.Clone(raw) // (a prefixed stanza is refused by its stream)
	}
	var b bytes.Buffer
	b.Grow(len(raw) + 64*len(decls))
	b.Write(raw[:1+len(name)])
	for _, d := range decls {
		writeAttr(&b, "xmlns:"+d.Name.Local, d.Value)
	}
	b.Write(raw[1+len(name):])
	return b.Bytes()
}

// supportedVersion reports whether a stream header's version is one we
// speak: major version 1 (RFC 6120 §4.7.5: a higher major version gets
// <unsupported-version/>); a malformed version is not supported either.
func supportedVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	if !ok || !allDigits(major) || !allDigits(minor) {
		return false
	}
	return strings.TrimLeft(major, "0") == "1"
}

func allDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// inboundRoot reports whether an element may start at the top level of an
// inbound stream.
func inboundRoot(n xml.Name) bool {
	switch n.Space {
	case NSServer:
		return isStanzaName(n.Local)
	case NSDialback:
		return n.Local == "result" || n.Local == "verify"
	case NSTLS:
		return n.Local == "starttls"
	case NSSASL: // SASL EXTERNAL (auth.go); refused after negotiation
		return n.Local == "auth"
	case NSStream:
		return n.Local == "error"
	}
	return false
}
