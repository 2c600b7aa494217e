package s2s

import (
	"errors"
	"io"
	"unicode/utf8"
)

// errNotXML is returned by the recorder when a stream does not start with
// '<' (after whitespace or a byte order mark): an HTTP request, TLS, noise.
// Refused at once, without waiting for a '<' that may never come.
var errNotXML = errors.New("s2s: not an XML stream")

// Scanner states: where in the XML grammar the next input byte is.
const (
	scText      = iota // character data (also the prolog and between stanzas)
	scLT               // after '<'
	scStartName        // the name of a start tag
	scTag              // inside a start tag, between attributes
	scAttrName         // an attribute name
	scValue            // inside a quoted attribute value
	scElideAttr        // an attribute over a limit, dropped up to its closing quote
	scEmpty            // after '/' in a start tag
	scEndName          // the name of an end tag
	scEndTag           // after the name of an end tag
	scBang             // after "<!"
	scCDATA            // inside a CDATA section
	scOpaque           // comment, processing instruction or DOCTYPE, up to '>'
)

// maxRefLen bounds the bytes of one character or entity reference the
// scanner looks at as a whole; longer ones are left to the decoder.
const maxRefLen = 64

// recorder is the byte source of the XML decoder. It implements
// io.ByteReader so that the decoder does not add its own buffering and
// xml.Decoder.InputOffset counts exactly the bytes taken from it, and it
// keeps the bytes handed out since offset base so that each top-level
// element's exact bytes can be cut out.
//
// It also runs a small scanner over the input that follows the XML grammar
// (text, tags, attribute values, CDATA) to do what encoding/xml does not:
//
//   - It checks what the decoder lets through or would die of but that is
//     confined to one element: character references to code points that are
//     not XML Chars (&#0;, &#xD800;, &#xFFFE;), raw control characters and
//     U+FFFE/U+FFFF in text and attribute values, attributes not separated by
//     whitespace, over-long names. The decoder gets a harmless stand-in of
//     the same length (a reference to U+0009, spaces), so that it stays in
//     step and the stream can go on after the element is refused.
//   - It bounds the decoder's memory: a text run or attribute value longer
//     than maxText, attributes beyond the per-tag limit, and everything of an
//     element larger than max are not handed to the decoder (elided), only
//     the bytes that keep the structure (markup, references, the end of
//     runs). Eliding only ever happens in an element that is refused.
//
// Each such finding is a flag (fault) that the reader takes after each
// token and charges to the element being read. Recording stops once the
// reader marks the element as refused (skip) or the element passes max,
// so a refused element costs no memory however long it is.
type recorder struct {
	r   io.Reader
	buf []byte // read buffer
	pos int    // next unread byte in buf
	err error  // the last error of r (the decoder may wrap or replace it)

	q    []byte // bytes to hand out next (a unit of input, possibly rewritten)
	qpos int
	qerr error // error to return once q is empty

	rec  []byte // bytes handed out since base (unless skip or over)
	base int64  // decoder input offset of rec[0]
	off  int64  // bytes handed out so far
	max  int    // bytes an element may have (Limits.MaxStanzaSize)
	skip bool   // the current element is refused: do not record it
	over bool   // the current element passed max

	// Limits enforced while scanning.
	maxText  int // one text run, attribute value or name
	maxAttrs int // attributes per tag below the stream header
	hdrAttrs int // attributes of the stream header

	// Scanner state.
	seen   bool // a '<' has been read
	state  int
	quote  byte // the quote of the attribute value being read
	depth  int  // open elements (1 inside the stream header)
	run    int  // input bytes of the current text run, value or name
	attrs  int  // attributes of the current tag so far
	needWS bool // an attribute value just ended: whitespace must follow
	elided bool // the last name byte was elided (continuation bytes follow it)
	bang   int  // bytes of "[CDATA[" matched after "<!"
	rb     int  // ']' held back in text or CDATA
	eattr  int  // scElideAttr: 0 before the value, 1 inside it

	fault, faultText string // first finding since the last take
}

func newRecorder(r io.Reader, lim Limits) *recorder {
	return &recorder{r: r, buf: make([]byte, 0, 4096), max: lim.MaxStanzaSize,
		maxText: lim.MaxTextSize, maxAttrs: lim.MaxAttrs, hdrAttrs: max(lim.MaxAttrs, headerAttrs)}
}

// flag notes a finding (the first one since the last take wins).
func (r *recorder) flag(detail, text string) {
	if r.fault == "" {
		r.fault, r.faultText = detail, text
	}
}

// take returns and clears the finding since the last call ("" if none).
func (r *recorder) take() (detail, text string) {
	d, t := r.fault, r.faultText
	r.fault, r.faultText = "", ""
	return d, t
}

// raw returns the next input byte.
func (r *recorder) raw() (byte, error) {
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
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

// unread gives back the byte raw just returned.
func (r *recorder) unread() { r.pos-- }

func (r *recorder) ReadByte() (byte, error) {
	// Fast path: a plain ASCII byte of text or of a value, within limits.
	if r.qpos == len(r.q) && r.pos < len(r.buf) && r.rb == 0 && r.run < r.maxText && !r.over &&
		(r.state == scText && r.seen || r.state == scValue) {
		if b := r.buf[r.pos]; b >= 0x20 && b < 0x80 && b != '<' && b != '&' && b != ']' && (r.state == scText || b != r.quote) {
			r.pos++
			r.run++
			return r.deliver(b), nil
		}
	}
	for r.qpos == len(r.q) {
		if r.qerr != nil {
			return 0, r.qerr
		}
		r.q, r.qpos = r.q[:0], 0
		r.qerr = r.scan()
	}
	b := r.q[r.qpos]
	r.qpos++
	return r.deliver(b), nil
}

// deliver accounts for b, handed to the decoder, and records it.
func (r *recorder) deliver(b byte) byte {
	r.off++
	if !r.over && r.off-r.base > int64(r.max) {
		r.over = true
		r.flag("stanza-size", "element larger than the size limit")
	}
	if !r.skip && !r.over {
		r.rec = append(r.rec, b)
	}
	return b
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

// slice returns the recorded bytes between two decoder offsets (of an
// element that was neither skipped nor over the limit).
func (r *recorder) slice(from, to int64) []byte {
	return r.rec[from-r.base : to-r.base]
}

// trim forgets recorded bytes before offset off and starts a new element
// there: recording resumes.
func (r *recorder) trim(off int64) {
	if r.skip || r.over {
		// Only a refused element ends here: at its '>', with nothing
		// handed out past it.
		r.rec, r.base, r.skip, r.over = r.rec[:0], off, false, false
		return
	}
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

func isWS(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func isNameByte(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' ||
		b == '_' || b == ':' || b == '.' || b == '-' || b >= 0x80
}

// isChar reports whether r is an XML 1.0 Char.
func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// scan reads one unit of input, moves the scanner and queues what the
// decoder is to get for it (nothing when it is elided).
func (r *recorder) scan() error {
	b, err := r.raw()
	if err != nil {
		return err
	}
	if !r.seen {
		switch b {
		case '<':
			r.seen = true
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF:
			r.q = append(r.q, b)
			return nil
		default:
			return errNotXML
		}
	}
	switch r.state {
	case scText, scValue, scCDATA:
		return r.content(b)
	case scLT:
		switch b {
		case '/':
			r.state, r.run = scEndName, 0
		case '!':
			r.state, r.bang = scBang, 0
		case '?':
			r.state = scOpaque
		default:
			r.state, r.run, r.attrs, r.needWS, r.elided = scStartName, 0, 0, false, false
			return r.name(b, scTag)
		}
	case scStartName:
		return r.name(b, scTag)
	case scEndName:
		return r.name(b, scEndTag)
	case scAttrName:
		return r.name(b, scTag)
	case scTag:
		return r.tag(b)
	case scElideAttr:
		switch {
		case r.eattr == 0 && (b == '\'' || b == '"'):
			r.eattr, r.quote = 1, b
		case r.eattr == 1 && b == r.quote:
			r.state, r.needWS = scTag, true
		case r.eattr == 0 && (b == '>' || b == '/' || b == '<'):
			r.state = scTag
			return r.tag(b)
		}
		return nil // elided
	case scEmpty:
		r.state = scTag
		if b == '>' {
			r.state, r.run = scText, 0
		}
	case scEndTag:
		if b == '>' {
			r.depth--
			r.state, r.run = scText, 0
		}
	case scBang:
		const cdata = "[CDATA["
		switch {
		case b == cdata[r.bang]:
			if r.bang++; r.bang == len(cdata) {
				r.state, r.run, r.rb = scCDATA, 0, 0
			}
		case b == '>':
			r.state, r.run = scText, 0
		default:
			r.state = scOpaque
		}
	case scOpaque:
		if b == '>' {
			r.state, r.run = scText, 0
		}
	}
	r.q = append(r.q, b)
	return nil
}

// name handles a byte of an element or attribute name; a byte that ends
// the name is handled in state next. Names longer than maxText are cut
// (at a character boundary) and flagged.
func (r *recorder) name(b byte, next int) error {
	if !isNameByte(b) {
		r.state = next
		if next == scTag {
			return r.tag(b)
		}
		return r.scanEndTag(b)
	}
	r.run++
	if r.run > r.maxText {
		if r.run == r.maxText+1 {
			r.flag("name-size", "name longer than the text limit")
		}
		if b < 0x80 || b >= 0xC0 || r.elided {
			r.elided = true
			return nil
		}
	}
	r.elided = false
	r.q = append(r.q, b)
	return nil
}

func (r *recorder) scanEndTag(b byte) error {
	if b == '>' {
		r.depth--
		r.state, r.run = scText, 0
	}
	r.q = append(r.q, b)
	return nil
}

// tag handles a byte inside a start tag, outside names and values.
func (r *recorder) tag(b byte) error {
	switch {
	case isWS(b):
		r.needWS = false
	case b == '>':
		r.depth++
		r.state, r.run = scText, 0
	case b == '/':
		r.state = scEmpty
	case b == '\'' || b == '"':
		r.state, r.quote, r.run = scValue, b, 0
	case isNameByte(b):
		if r.needWS {
			r.flag("attribute-syntax", "attributes not separated by whitespace")
		}
		r.attrs++
		limit := r.maxAttrs
		if r.depth == 0 {
			limit = r.hdrAttrs
		}
		if r.attrs > limit || r.over {
			if r.attrs == limit+1 {
				r.flag("attributes", "more attributes than the limit")
			}
			r.state, r.eattr = scElideAttr, 0
			return nil
		}
		r.state, r.run, r.elided = scAttrName, 0, false
		return r.name(b, scTag)
	}
	r.q = append(r.q, b)
	return nil
}

// content handles one unit of character data, an attribute value or a
// CDATA section: an ASCII byte, a UTF-8 sequence or a reference. Past the
// limits, units are elided; what is never elided is what ends the run
// ('<', the quote, "]]>") and a reference the decoder would read on past.
// ']' is held back (counted) until the next byte says whether it ends a
// CDATA section, so that eliding never makes or breaks a "]]>".
func (r *recorder) content(b byte) error {
	if b == ']' && r.state != scValue {
		r.rb++
		r.count(1)
		return nil
	}
	if n := r.rb; n > 0 {
		r.rb = 0
		if b == '>' && n >= 2 {
			// The end of a CDATA section ("]]>" in text is an error the
			// decoder reports): handed out, the excess ']' elided past
			// the limits.
			if r.limited() {
				n = 2
			}
			for range n {
				r.q = append(r.q, ']')
			}
			r.q = append(r.q, '>')
			if r.state == scCDATA {
				r.state, r.run = scText, 0
			}
			return nil
		}
		if !r.limited() {
			for range n {
				r.q = append(r.q, ']')
			}
		}
	}
	switch {
	case r.state == scText && b == '<':
		r.state = scLT
		r.q = append(r.q, b)
		return nil
	case r.state == scValue && b == r.quote:
		r.state, r.needWS = scTag, true
		r.q = append(r.q, b)
		return nil
	}
	start := len(r.q)
	r.q = append(r.q, b)
	keep := false
	switch {
	case b == '&' && r.state != scCDATA:
		// A whole reference may go; one cut short may not (the
		// decoder would take what follows as part of it).
		keep = !r.reference()
	case b < 0x20 && b != '\t' && b != '\n' && b != '\r':
		r.flag("char", "control character in text")
		r.q[start] = ' '
	case b >= 0xC0:
		r.sequence(start)
	case b == '<' || b == '\'' || b == '"':
		keep = true
	}
	r.count(len(r.q) - start)
	if !keep && r.limited() {
		r.q = r.q[:start]
	}
	return nil
}

// count adds n input bytes to the current run and flags the run once it
// passes maxText.
func (r *recorder) count(n int) {
	if r.run <= r.maxText && r.run+n > r.maxText {
		r.flag("text-size", "text or attribute value longer than the limit")
	}
	r.run += n
}

// limited reports whether content is elided now.
func (r *recorder) limited() bool { return r.run > r.maxText || r.over }

// reference reads the rest of a reference after '&' (queued) and, for a
// character reference to a code point that is not an XML Char, flags it
// and queues a reference to U+0009 of the same length instead. It reports
// whether the reference is complete (ends with ';').
func (r *recorder) reference() bool {
	start := len(r.q) - 1
	for len(r.q)-start < maxRefLen {
		b, err := r.raw()
		if err != nil {
			return false // the decoder meets the error after the queued bytes
		}
		if b == ';' {
			r.q = append(r.q, b)
			break
		}
		if !isNameByte(b) && b != '#' {
			r.unread()
			return false
		}
		r.q = append(r.q, b)
	}
	ref := r.q[start:]
	if ref[len(ref)-1] != ';' {
		return false
	}
	if len(ref) < 4 || ref[1] != '#' {
		return true
	}
	digits, base := ref[2:len(ref)-1], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return true
	}
	var v uint64
	for _, c := range digits {
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return true // not a reference: the decoder refuses it
		}
		if v = v*uint64(base) + d; v > 0x10FFFF {
			v = 0x110000
		}
	}
	if isChar(rune(v)) {
		return true
	}
	r.flag("char", "character reference to a code point that is not an XML Char")
	for i := range digits {
		digits[i] = '0'
	}
	digits[len(digits)-1] = '9'
	return true
}

// sequence reads the continuation bytes of the UTF-8 sequence whose lead
// byte is queued at q[start]. U+FFFE and U+FFFF become spaces (flagged);
// invalid UTF-8 is left to the decoder.
func (r *recorder) sequence(start int) {
	n := 2
	switch lead := r.q[start]; {
	case lead >= 0xF0:
		n = 4
	case lead >= 0xE0:
		n = 3
	}
	for len(r.q)-start < n {
		b, err := r.raw()
		if err != nil {
			return
		}
		if b < 0x80 || b >= 0xC0 {
			r.unread()
			return
		}
		r.q = append(r.q, b)
	}
	c, size := utf8.DecodeRune(r.q[start:])
	if size == n && (c == 0xFFFE || c == 0xFFFF) {
		r.flag("char", "U+FFFE or U+FFFF in text")
		for i := start; i < len(r.q); i++ {
			r.q[i] = ' '
		}
	}
}
