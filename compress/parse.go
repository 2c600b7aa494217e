package compress

import (
	"bytes"
	"unicode/utf8"
)

// The parser reads the subset of XML that the structural coder represents.
// Anything outside it makes parse return false and the stanza crosses the
// link byte for byte (raw form): prefixed names other than xml:lang,
// xmlns:* declarations, comments, processing instructions, CDATA, DOCTYPE,
// a carriage return, tab or newline inside an attribute value (text keeps
// them, carriage returns included), a character reference to a control
// character,
// control characters, invalid UTF-8, duplicate attributes, text or space
// around the element, nesting deeper than maxDepth.

type evKind uint8

const (
	evStart    evKind = iota // element start: name
	evAttr                   // attribute of the last start: name, val (unescaped)
	evText                   // character data: val (unescaped)
	evEnd                    // element end; self-closing (<x/>) when the element is empty
	evEndEmpty               // end of an empty element written <x></x>
)

type event struct {
	kind      evKind
	name, val []byte
}

type parser struct {
	ev    []event
	stack [][]byte
	// escaping style seen in text: quotes written literally or as entities
	textLiteralQuote, textEscapedQuote bool
	dq, sawAttr                        bool // first attribute double-quoted
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// validName reports whether b is a name the structural form carries.
func validName(b []byte, attr bool) bool {
	if len(b) == 0 || len(b) > maxInterned || !isNameStart(b[0]) {
		return false
	}
	for _, c := range b[1:] {
		if !isNameChar(c) {
			return attr && string(b) == "xml:lang"
		}
	}
	return true
}

func scanName(in []byte, j int, attr bool) ([]byte, int, bool) {
	s := j
	for j < len(in) && (isNameChar(in[j]) || in[j] == ':') {
		j++
	}
	name := in[s:j]
	return name, j, validName(name, attr)
}

func skipSpace(in []byte, j int) int {
	for j < len(in) && isSpace(in[j]) {
		j++
	}
	return j
}

// parse fills p.ev with the events of one stanza, or returns false.
func (p *parser) parse(in []byte) bool {
	p.ev = p.ev[:0]
	p.stack = p.stack[:0]
	p.textLiteralQuote, p.textEscapedQuote, p.dq, p.sawAttr = false, false, false, false
	if len(in) == 0 || in[0] != '<' || !utf8.Valid(in) {
		return false
	}
	if bytes.IndexByte(in, 0xEF) >= 0 && (bytes.Contains(in, []byte("\uFFFE")) || bytes.Contains(in, []byte("\uFFFF"))) {
		return false // not XML characters
	}
	i := 0
	for i < len(in) {
		if in[i] != '<' {
			if len(p.stack) == 0 {
				return false
			}
			j := bytes.IndexByte(in[i:], '<')
			if j < 0 {
				return false
			}
			val, ok := p.unescape(in[i:i+j], 0)
			if !ok {
				return false
			}
			p.ev = append(p.ev, event{kind: evText, val: val})
			i += j
			continue
		}
		if i+1 >= len(in) {
			return false
		}
		switch in[i+1] {
		case '/':
			name, j, ok := scanName(in, i+2, false)
			if !ok {
				return false
			}
			j = skipSpace(in, j)
			if j >= len(in) || in[j] != '>' || len(p.stack) == 0 || !bytes.Equal(p.stack[len(p.stack)-1], name) {
				return false
			}
			p.stack = p.stack[:len(p.stack)-1]
			kind := evEnd
			if k := p.ev[len(p.ev)-1].kind; k == evStart || k == evAttr {
				kind = evEndEmpty
			}
			p.ev = append(p.ev, event{kind: kind})
			i = j + 1
			if len(p.stack) == 0 {
				return i == len(in)
			}
		case '!', '?':
			return false
		default:
			if len(p.stack) >= maxDepth {
				return false
			}
			name, j, ok := scanName(in, i+1, false)
			if !ok {
				return false
			}
			p.ev = append(p.ev, event{kind: evStart, name: name})
			first := len(p.ev)
			for {
				s := j
				j = skipSpace(in, j)
				if j >= len(in) {
					return false
				}
				if in[j] == '/' {
					if j+1 >= len(in) || in[j+1] != '>' {
						return false
					}
					p.ev = append(p.ev, event{kind: evEnd})
					j += 2
					if len(p.stack) == 0 {
						return j == len(in)
					}
					break
				}
				if in[j] == '>' {
					p.stack = append(p.stack, name)
					j++
					break
				}
				if j == s {
					return false // attributes must be separated by space
				}
				aname, k, ok := scanName(in, j, true)
				if !ok {
					return false
				}
				k = skipSpace(in, k)
				if k >= len(in) || in[k] != '=' {
					return false
				}
				k = skipSpace(in, k+1)
				if k >= len(in) || (in[k] != '\'' && in[k] != '"') {
					return false
				}
				q := in[k]
				if !p.sawAttr {
					p.sawAttr, p.dq = true, q == '"'
				}
				end := bytes.IndexByte(in[k+1:], q)
				if end < 0 {
					return false
				}
				val, ok := p.unescape(in[k+1:k+1+end], q)
				if !ok {
					return false
				}
				for _, a := range p.ev[first:] {
					if bytes.Equal(a.name, aname) {
						return false
					}
				}
				p.ev = append(p.ev, event{kind: evAttr, name: aname, val: val})
				j = k + 1 + end + 1
			}
			i = j
		}
	}
	return false
}

// textFull reports whether the parsed stanza's text is written with its
// quotes escaped (flagTextFull).
func (p *parser) textFull() bool { return p.textEscapedQuote && !p.textLiteralQuote }

// canonicalSize returns the length of the parsed stanza as the decoder
// writes it back (see the package doc: canonicalization).
func (p *parser) canonicalSize() int {
	full := p.textFull()
	n := 0
	p.stack = p.stack[:0]
	for k, x := range p.ev {
		switch x.kind {
		case evStart:
			n += 1 + len(x.name) // <name
			p.stack = append(p.stack, x.name)
		case evAttr:
			n += 4 + len(x.name) + escapedLen(x.val, true) // ' name="val"'
		case evText:
			n += escapedLen(x.val, full)
		case evEnd, evEndEmpty:
			name := p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
			switch {
			case x.kind == evEndEmpty:
				n += 4 + len(name) // ></name>
			case p.ev[k-1].kind == evStart || p.ev[k-1].kind == evAttr:
				n += 2 // />
			default:
				n += 3 + len(name) // </name>
			}
		}
		if x.kind != evAttr && k > 0 && (p.ev[k-1].kind == evStart || p.ev[k-1].kind == evAttr) && x.kind != evEnd && x.kind != evEndEmpty {
			n++ // '>' closing a start tag with content
		}
	}
	return n
}

// escapedLen is the length of v escaped as escapeAttr (attr) or
// escapeText (full: quotes too) write it.
func escapedLen(v []byte, quotes bool) int {
	n := len(v)
	for _, c := range v {
		switch c {
		case '&':
			n += 4
		case '<', '>':
			n += 3
		case '\'', '"':
			if quotes {
				n += 5
			}
		}
	}
	return n
}

// unescape validates and unescapes attribute values (quote != 0) or text.
// It returns a slice of raw when there is nothing to unescape.
func (p *parser) unescape(raw []byte, quote byte) ([]byte, bool) {
	amp := -1
	for i, c := range raw {
		switch {
		case c == '&':
			if amp < 0 {
				amp = i
			}
		case c == '<':
			return nil, false
		case c < 0x20:
			// Text keeps its tabs, newlines and carriage returns as they
			// are (a CR arrives when a client wrote &#13;: vCard BINVAL
			// wrapped with CRLF); attribute values, which XML normalizes,
			// keep none.
			if quote != 0 || c != '\n' && c != '\t' && c != '\r' {
				return nil, false
			}
		case quote == 0 && (c == '\'' || c == '"'):
			p.textLiteralQuote = true
		case quote == 0 && c == '>':
			if i >= 2 && raw[i-1] == ']' && raw[i-2] == ']' {
				return nil, false
			}
		}
	}
	if amp < 0 {
		return raw, true
	}
	out := make([]byte, 0, len(raw))
	out = append(out, raw[:amp]...)
	for i := amp; i < len(raw); i++ {
		c := raw[i]
		if c != '&' {
			out = append(out, c)
			continue
		}
		semi := bytes.IndexByte(raw[i:min(len(raw), i+12)], ';')
		if semi < 0 {
			return nil, false
		}
		ent := raw[i+1 : i+semi]
		i += semi
		switch string(ent) {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "quot":
			out = append(out, '"')
			if quote == 0 {
				p.textEscapedQuote = true
			}
		case "apos":
			out = append(out, '\'')
			if quote == 0 {
				p.textEscapedQuote = true
			}
		default:
			r, ok := charRef(ent)
			if !ok {
				return nil, false
			}
			if quote == 0 && (r == '\'' || r == '"') {
				p.textEscapedQuote = true
			}
			out = utf8.AppendRune(out, r)
		}
	}
	return out, true
}

// charRef parses "#123" or "#x7B"; control characters, surrogates and
// non-characters are refused.
func charRef(ent []byte) (rune, bool) {
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	var r rune
	if ent[1] == 'x' {
		if len(ent) < 3 {
			return 0, false
		}
		for _, c := range ent[2:] {
			switch {
			case c >= '0' && c <= '9':
				r = r*16 + rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r*16 + rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r*16 + rune(c-'A'+10)
			default:
				return 0, false
			}
			if r > 0x10FFFF {
				return 0, false
			}
		}
	} else {
		for _, c := range ent[1:] {
			if c < '0' || c > '9' {
				return 0, false
			}
			r = r*10 + rune(c-'0')
			if r > 0x10FFFF {
				return 0, false
			}
		}
	}
	if r < 0x20 || r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF || r > 0x10FFFF {
		return 0, false
	}
	return r, true
}
