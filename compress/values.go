package compress

// Value forms: the kinds of values (valueKind) and the rules both ends
// apply to them (which values are cut out of a shape, which keep a typed
// header), and the encodings behind the forms (UUID, hex, base64, packed
// ids, timestamps, JIDs) and the escaping of the decoded XML.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// valueKind is what a value form carries, as both ends see it: the
// encoder's value returns the kind it wrote, the decoder reads it from the
// form (kindOf), and the rules below, which shape the wire format, are
// written once in terms of it.
type valueKind uint8

const (
	kindNone    valueKind = iota // not a value form (formHole, formHoleTyped)
	kindEmpty                    // formEmpty
	kindLast                     // formLastID: the most recent id
	kindRing                     // formRing: an id of the recent-id ring
	kindVocab                    // formStatic + a vocab index
	kindTable                    // formRank + r, or a value-table slot
	kindJID                      // formJID
	kindTime                     // formTime
	kindUUID                     // formUUID(I)
	kindHex                      // formHex(I)
	kindB64                      // formB64(I)
	kindB64L                     // formB64L
	kindPacked                   // formB64URL(I)
	kindLiteral                  // formLit(I)
	kindPair                     // formPair, formPaired: the root's 'from' and 'to'
	kindEcho                     // formEcho, formEchoEpoch: an id the other direction carried
)

var kindNames = [...]string{kindNone: "none", kindEmpty: "empty", kindLast: "last", kindRing: "ring",
	kindVocab: "vocab", kindTable: "table", kindJID: "jid", kindTime: "time", kindUUID: "uuid",
	kindHex: "hex", kindB64: "b64", kindB64L: "b64long", kindPacked: "packed", kindLiteral: "literal", kindPair: "pair", kindEcho: "echo"}

// String is the kind's name in the accounting (tests and tuning only).
func (k valueKind) String() string { return kindNames[k] }

// kindOf returns the kind of a value form.
func kindOf(form uint64) valueKind {
	switch form {
	case formEmpty:
		return kindEmpty
	case formLit, formLitI:
		return kindLiteral
	case formUUID, formUUIDI:
		return kindUUID
	case formHex, formHexI:
		return kindHex
	case formB64, formB64I:
		return kindB64
	case formB64L:
		return kindB64L
	case formB64URL, formB64URLI, formB64URLP:
		return kindPacked
	case formJID:
		return kindJID
	case formRing:
		return kindRing
	case formTime:
		return kindTime
	case formHole, formHoleTyped:
		return kindNone
	case formLastID:
		return kindLast
	case formPair, formPaired:
		return kindPair
	case formEcho, formEchoEpoch:
		return kindEcho
	}
	if form >= formStatic && form-formStatic < uint64(len(vocab)) {
		return kindVocab
	}
	return kindTable
}

// hole reports whether a top-level value of this kind is cut out of its
// stanza's shape (attr: an attribute value, else text): every value but
// an empty one, the most recent id, and an attribute value that is a vocab
// entry (text that is one is cut out too).
func (k valueKind) hole(attr bool) bool {
	return k != kindEmpty && k != kindLast && (k != kindVocab || !attr)
}

// Typed holes: a shape keeps the header of a value of these kinds (its
// form, and for sized kinds its length), so that stanzas of the shape
// carry only the rest. Literals and table references stay whole in the
// stanza: their form varies from one stanza to the next.
func (k valueKind) typed() bool {
	switch k {
	case kindUUID, kindJID, kindTime, kindRing, kindPair, kindB64L, kindEcho:
		return true
	}
	return k.sized()
}

// sized: the header holds a uvarint length after the form.
func (k valueKind) sized() bool { return k == kindHex || k == kindB64 || k == kindPacked }

// typedHeader returns the length of the header of the value encoded at the
// start of v that a shape keeps (see typed), 0 if it keeps none.
func typedHeader(v []byte) int {
	form, n := binary.Uvarint(v)
	if n <= 0 {
		return 0
	}
	switch k := kindOf(form); {
	case k.sized():
		if _, m := binary.Uvarint(v[n:]); m > 0 {
			return n + m
		}
	case k.typed():
		return n
	}
	return 0
}

func splitJID(v []byte) (local, domain, bare, res []byte, hasRes, ok bool) {
	bare = v
	for i, c := range v {
		if c == '/' {
			bare, res, hasRes = v[:i], v[i+1:], true
			break
		}
	}
	domain = bare
	for i, c := range bare {
		if c == '@' {
			local, domain = bare[:i], bare[i+1:]
			break
		}
	}
	if hasRes && len(res) == 0 || local != nil && len(local) == 0 || len(domain) == 0 ||
		len(bare) > maxInterned || len(res) > maxInterned || len(domain) > internMax {
		return nil, nil, nil, nil, false, false
	}
	for _, c := range domain {
		if c == '@' {
			return nil, nil, nil, nil, false, false
		}
	}
	return local, domain, bare, res, hasRes, true
}

// escapeAttr escapes all five XML special characters, as Prosody does.
func escapeAttr(dst, s []byte) []byte { return escapeText(dst, s, true) }

// escapeText escapes & < > and, when full, the quotes.
func escapeText(dst, s []byte, full bool) []byte {
	for _, c := range s {
		switch c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '\'':
			if full {
				dst = append(dst, "&apos;"...)
			} else {
				dst = append(dst, c)
			}
		case '"':
			if full {
				dst = append(dst, "&quot;"...)
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

var pow10 = [10]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

func isTimestamp(v []byte) bool {
	return len(v) >= 20 && len(v) <= 30 && v[4] == '-' && v[10] == 'T' && v[len(v)-1] == 'Z'
}

// parseTimestamp reads XEP-0082 "2006-01-02T15:04:05[.frac]Z" and reports
// whether formatting it back gives the same bytes.
func parseTimestamp(v []byte) (sec int64, digits int, frac uint64, ok bool) {
	t, err := time.Parse("2006-01-02T15:04:05Z", string(v[:19])+"Z")
	if err != nil || t.Unix() < 0 {
		return 0, 0, 0, false
	}
	rest := v[19 : len(v)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return 0, 0, 0, false
		}
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return 0, 0, 0, false
			}
			frac = frac*10 + uint64(c-'0')
		}
		digits = len(rest) - 1
	}
	var buf [32]byte
	if string(appendTimestamp(buf[:0], t.Unix(), digits, frac)) != string(v) {
		return 0, 0, 0, false
	}
	return t.Unix(), digits, frac, true
}

func appendTimestamp(dst []byte, sec int64, digits int, frac uint64) []byte {
	dst = time.Unix(sec, 0).UTC().AppendFormat(dst, "2006-01-02T15:04:05")
	if digits > 0 {
		dst = append(dst, '.')
		for p := digits - 1; p >= 0; p-- {
			dst = append(dst, byte('0'+frac/pow10[p]%10))
		}
	}
	return append(dst, 'Z')
}

func isLowerHex(v []byte) bool {
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isUUID(v []byte) bool {
	if len(v) != 36 || v[8] != '-' || v[13] != '-' || v[18] != '-' || v[23] != '-' {
		return false
	}
	for i, c := range v {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func appendUUID(dst, v []byte) []byte {
	for _, part := range [][2]int{{0, 8}, {9, 13}, {14, 18}, {19, 23}, {24, 36}} {
		dst, _ = hex.AppendDecode(dst, v[part[0]:part[1]])
	}
	return dst
}

func formatUUID(dst, b []byte) []byte {
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:16])
}

func padding(v []byte) int {
	n := 0
	for i := len(v) - 1; i >= 0 && v[i] == '='; i-- {
		n++
	}
	return n
}

// b64Strict decodes padded standard base64 whose padding bits are zero:
// with no line break in the input (the decoder skips them), what it
// accepts re-encodes to the same characters.
var b64Strict = base64.StdEncoding.Strict()

// isB64 reports whether v is padded standard base64 of at least 12 bytes,
// without line breaks, that re-encodes to itself; its decoded length is
// b64Len(v).
func isB64(v []byte) bool {
	if len(v) < 16 || len(v)%4 != 0 || len(v) > MaxStanzaSize {
		return false
	}
	for _, c := range v[:len(v)-2] {
		if !b64Std[c] {
			return false
		}
	}
	return canonB64(v)
}

// canonB64 reports whether v (no line breaks, len%4 == 0, checked by the
// caller up to its last two characters) ends as canonical padded base64:
// the padding and the bits it leaves unused are zero.
func canonB64(v []byte) bool {
	var buf [3]byte
	_, err := b64Strict.Decode(buf[:], v[len(v)-4:])
	return err == nil
}

// b64Std: the characters of standard base64, padding excluded.
var b64Std = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

func b64Len(v []byte) int { return len(v)/4*3 - padding(v) }

// b64Wrap is how wrapped base64 text (formB64L) lays out its characters:
// lines of line characters (the last one shorter or as long), broken by
// "\n" or "\r\n" (crlf), with a break before the first (lead) and after
// the last (trail). On the wire it is one uvarint, line<<3 | crlf<<2 |
// lead<<1 | trail.
type b64Wrap struct {
	line              int
	crlf, lead, trail bool
}

func (w b64Wrap) code() uint64 {
	c := uint64(w.line) << 3
	if w.crlf {
		c |= 4
	}
	if w.lead {
		c |= 2
	}
	if w.trail {
		c |= 1
	}
	return c
}

func wrapOf(c uint64) (b64Wrap, bool) {
	if c>>3 == 0 || c>>3 > MaxStanzaSize {
		return b64Wrap{}, false
	}
	return b64Wrap{line: int(c >> 3), crlf: c&4 != 0, lead: c&2 != 0, trail: c&1 != 0}, true
}

// size is the length of chars base64 characters laid out by w.
func (w b64Wrap) size(chars int) int {
	brk := 1
	if w.crlf {
		brk = 2
	}
	n := chars + (chars+w.line-1)/w.line*brk - brk
	if w.lead {
		n += brk
	}
	if w.trail {
		n += brk
	}
	return n
}

// append appends the base64 characters b laid out by w.
func (w b64Wrap) append(dst, b []byte) []byte {
	brk := "\n"
	if w.crlf {
		brk = "\r\n"
	}
	if w.lead {
		dst = append(dst, brk...)
	}
	for i := 0; i < len(b); i += w.line {
		if i > 0 {
			dst = append(dst, brk...)
		}
		dst = append(dst, b[i:min(i+w.line, len(b))]...)
	}
	if w.trail {
		dst = append(dst, brk...)
	}
	return dst
}

// wrappedB64 reports whether v is canonical padded standard base64 of at
// least 12 bytes broken into lines with at least one line break, exactly
// as b64Wrap.append writes it, and returns its layout and its characters
// (appended to scratch).
func wrappedB64(scratch, v []byte) ([]byte, b64Wrap, bool) {
	var w b64Wrap
	chars := scratch[:0]
	rest := v
	brk := 0 // length of the break style seen so far
	if len(rest) > 0 && rest[0] == '\n' {
		w.lead, brk, rest = true, 1, rest[1:]
	} else if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
		w.lead, w.crlf, brk, rest = true, true, 2, rest[2:]
	}
	short := false // a line shorter than the first was seen: it must be the last
	for len(rest) > 0 {
		j := 0
		for j < len(rest) && rest[j] != '\n' {
			j++
		}
		line := rest[:j]
		if j < len(rest) {
			b := 1
			if j > 0 && rest[j-1] == '\r' {
				b, line = 2, rest[:j-1]
			}
			if brk != 0 && b != brk {
				return nil, w, false
			}
			brk, w.crlf = b, b == 2
			rest = rest[j+1:]
			if len(rest) == 0 {
				w.trail = true
			}
		} else {
			rest = nil
		}
		switch {
		case len(line) == 0 || short:
			return nil, w, false
		case w.line == 0:
			w.line = len(line)
		case len(line) > w.line:
			return nil, w, false
		case len(line) < w.line:
			short = true
		}
		for _, c := range line {
			if !b64Std[c] && c != '=' {
				return nil, w, false
			}
		}
		chars = append(chars, line...)
	}
	if brk == 0 || len(chars) < 16 || len(chars)%4 != 0 || !canonB64(chars) {
		return nil, w, false
	}
	for _, c := range chars[:len(chars)-2] {
		if c == '=' {
			return nil, w, false
		}
	}
	return chars, w, true
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

var b64urlIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(b64url); i++ {
		t[b64url[i]] = int8(i)
	}
	return t
}()

func isB64URLAlpha(v []byte) bool {
	for _, c := range v {
		if b64urlIndex[c] < 0 {
			return false
		}
	}
	return true
}

// looksRandom: mixed case and digits, as generated ids are.
func looksRandom(v []byte) bool {
	var lo, up, dig bool
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z':
			lo = true
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= '0' && c <= '9':
			dig = true
		}
	}
	return lo && up && dig
}

func packB64URL(dst, v []byte) []byte {
	var acc uint32
	bits := 0
	for _, c := range v {
		acc = acc<<6 | uint32(b64urlIndex[c])
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst = append(dst, byte(acc>>bits))
		}
	}
	if bits > 0 {
		dst = append(dst, byte(acc<<(8-bits)))
	}
	return dst
}

func unpackB64URL(dst, b []byte, n int) []byte {
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 6 && n > 0 {
			bits -= 6
			dst = append(dst, b64url[acc>>bits&63])
			n--
		}
	}
	return dst
}
