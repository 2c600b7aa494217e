package s2s

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
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

// errTooBig is returned by the recorder once the current element exceeds
// the size limit; the decoder passes it through.
var errTooBig = errors.New("s2s: element too big")

// errNotXML is returned by the recorder when a stream does not start with
// '<' (after whitespace or a byte order mark): an HTTP request, TLS, noise.
// Refused at once, without waiting for a '<' that may never come.
var errNotXML = errors.New("s2s: not an XML stream")

// recorder is the byte source of the XML decoder. It implements
// io.ByteReader so that the decoder does not add its own buffering and
// xml.Decoder.InputOffset counts exactly the bytes taken from it, and it
// keeps the bytes read since offset base so that each top-level element's
// exact bytes can be cut out. It refuses to hold more than max bytes.
type recorder struct {
	r    io.Reader
	buf  []byte // read buffer
	pos  int    // next unread byte in buf
	rec  []byte // bytes handed out since base
	base int64  // decoder input offset of rec[0]
	max  int
	seen bool  // a '<' has been read
	err  error // the last error of r (the decoder may wrap or replace it)
}

func newRecorder(r io.Reader, max int) *recorder {
	return &recorder{r: r, buf: make([]byte, 0, 4096), max: max}
}

func (r *recorder) ReadByte() (byte, error) {
	if r.pos == len(r.buf) {
		n, err := r.r.Read(r.buf[:cap(r.buf)])
		r.buf, r.pos = r.buf[:n], 0
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			r.err = err
			return 0, err
		}
	}
	if len(r.rec) >= r.max {
		return 0, errTooBig
	}
	b := r.buf[r.pos]
	if !r.seen {
		switch b {
		case '<':
			r.seen = true
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF:
		default:
			return 0, errNotXML
		}
	}
	r.pos++
	r.rec = append(r.rec, b)
	return b, nil
}

// Read is only here to satisfy io.Reader; the decoder uses ReadByte.
func (r *recorder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// slice returns the recorded bytes between two decoder offsets.
func (r *recorder) slice(from, to int64) []byte {
	return r.rec[from-r.base : to-r.base]
}

// trim forgets recorded bytes before offset off.
func (r *recorder) trim(off int64) {
	n := int(off - r.base)
	if n <= 0 {
		return
	}
	rest := copy(r.rec, r.rec[n:])
	r.rec = r.rec[:rest]
	r.base = off
	if cap(r.rec) > 64<<10 && len(r.rec) < 1<<10 {
		r.rec = append(make([]byte, 0, 1<<10), r.rec...)
	}
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
// or another element (Node set).
type element struct {
	Stanza *Stanza
	Node   *node
}

// xmlReader reads one XML stream: the header, then top-level elements.
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
}

// headerAttrs is the least number of attributes a stream header may have
// whatever Limits.MaxAttrs says: Prosody's carry eight.
const headerAttrs = 32

func newXMLReader(r io.Reader, lim Limits) *xmlReader {
	lim = lim.withDefaults()
	rec := newRecorder(r, lim.MaxStanzaSize+64)
	d := xml.NewDecoder(rec)
	d.Strict = true
	return &xmlReader{rec: rec, dec: d, maxSize: lim.MaxStanzaSize, maxDepth: lim.MaxDepth,
		maxAttrs: lim.MaxAttrs, maxText: lim.MaxTextSize}
}

// token reads one token and maps errors to stream errors.
func (x *xmlReader) token() (xml.Token, error) {
	tok, err := x.dec.Token()
	if err != nil {
		var synErr *xml.SyntaxError
		switch {
		case errors.Is(err, errTooBig):
			return nil, lerr(SErrPolicyViolation, "stanza-size", "element larger than %d bytes", x.maxSize)
		case errors.Is(err, errNotXML):
			return nil, serr(SErrNotWellFormed, "%v", err)
		case x.rec.err != nil && !errors.Is(x.rec.err, io.EOF):
			return nil, x.rec.err // a read error (a deadline, a reset): no stream error
		case errors.As(err, &synErr):
			if errors.Is(err, io.ErrUnexpectedEOF) || synErr.Msg == "unexpected EOF" {
				return nil, io.ErrUnexpectedEOF
			}
			if strings.HasPrefix(synErr.Msg, "invalid character entity &") && !strings.HasPrefix(synErr.Msg, "invalid character entity &#") {
				// RFC 6120 §11.1: no entity references but the five predefined.
				return nil, lerr(SErrRestrictedXML, "restricted-xml", "%v", err)
			}
			return nil, serr(SErrNotWellFormed, "%v", err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, err
		default:
			// The decoder's own complaints (e.g. an XML declaration
			// with version 2.0) are not read errors.
			return nil, serr(SErrNotWellFormed, "%v", err)
		}
	}
	switch t := tok.(type) {
	case xml.Comment, xml.Directive:
		return nil, lerr(SErrRestrictedXML, "restricted-xml", "%T", tok)
	case xml.StartElement:
		limit := x.maxAttrs
		if !x.started {
			limit = max(limit, headerAttrs)
		}
		if len(t.Attr) > limit {
			return nil, lerr(SErrPolicyViolation, "attributes", "<%s> has %d attributes, limit %d", t.Name.Local, len(t.Attr), limit)
		}
		for _, a := range t.Attr {
			if len(a.Value) > x.maxText {
				return nil, lerr(SErrPolicyViolation, "text-size", "attribute %s of %d bytes, limit %d", a.Name.Local, len(a.Value), x.maxText)
			}
		}
	case xml.CharData:
		if len(t) > x.maxText {
			return nil, lerr(SErrPolicyViolation, "text-size", "text of %d bytes, limit %d", len(t), x.maxText)
		}
	}
	return tok, nil
}

// header reads the XML declaration (optional) and the stream header.
func (x *xmlReader) header() (xml.StartElement, error) {
	first := true
	for {
		tok, err := x.token()
		if err != nil {
			return xml.StartElement{}, err
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
// errStreamEnd at </stream:stream> and a *StreamError on violations.
func (x *xmlReader) next() (element, error) {
	for {
		before := x.dec.InputOffset()
		tok, err := x.token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
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
			return x.element(t, before)
		}
	}
}

// element reads the rest of the top-level element that starts with se at
// input offset start.
func (x *xmlReader) element(se xml.StartElement, start int64) (element, error) {
	isStanza := se.Name.Space == NSServer && isStanzaName(se.Name.Local)
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
	depth := 1
	for depth > 0 {
		tok, err := x.token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > x.maxDepth {
				return element{}, lerr(SErrPolicyViolation, "depth", "nesting deeper than %d", x.maxDepth)
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
	if int(end-start) > x.maxSize {
		return element{}, lerr(SErrPolicyViolation, "stanza-size", "element of %d bytes, limit %d", end-start, x.maxSize)
	}
	raw := x.rec.slice(start, end)
	if isStanza {
		st.Raw = bytes.Clone(raw)
	}
	x.rec.trim(end)
	if isStanza {
		return element{Stanza: &st}, nil
	}
	return element{Node: root}, nil
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
