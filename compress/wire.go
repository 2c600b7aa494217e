package compress

// The structural form's wire constants (see the package doc, Block
// format): stanza flags, content items, value forms, and the helpers that
// read and write the header bytes built from them.

import "fmt"

// Stanza flags (first byte of every stanza in a batch).
const (
	flagRaw      = 1 << 0 // raw form: uvarint(len) and the bytes follow
	flagTextFull = 1 << 1 // text escapes ' and " as &apos; &quot; (Prosody does)
	flagDQ       = 1 << 2 // attributes are written in double quotes
	flagStore    = 1 << 3 // keep the decoded stanza as the next template
	flagTemplate = 1 << 4 // a template: bits 0-3 its age (tmplRef), then the value of 'to'
	flagShape    = 1 << 5 // a shape: the other bits hold its rank (shapeRank), then the values of its holes
	flagNext     = 1 << 6 // with flagTemplate: 'to' is the bare JID predicted to follow the last root 'to' (tables.next)
	flagsKnown   = flagRaw | flagTextFull | flagDQ | flagStore | flagTemplate | flagShape | flagNext
)

// Content items (uvarint): end markers, text, or an element by name code.
const (
	itemEnd      = 0 // end of element (<x/> when it had no content)
	itemEndEmpty = 1 // end of an empty element written <x></x>
	itemText     = 2 // text value follows
	itemReserved = 3 // name codes start here
)

// Value forms (uvarint); vocab entries start at formStatic, the value
// table's slots after them.
const (
	formEmpty     = 0
	formLit       = 1 // uvarint(len), bytes
	formLitI      = 2 // same, interned
	formUUID      = 3 // 16 bytes: lower-case 8-4-4-4-12 UUID
	formUUIDI     = 4
	formHex       = 5 // uvarint(n), n bytes: lower-case hex
	formHexI      = 6
	formB64       = 7 // uvarint(n), n bytes: padded standard base64
	formB64I      = 8
	formB64URL    = 9 // uvarint(chars), 6 bits a char: [A-Za-z0-9-_]
	formB64URLI   = 10
	formJID       = 11 // bare code, resource code
	formRing      = 12 // one byte: slot of the recent-id ring
	formTime      = 13 // XEP-0082 UTC: uvarint(zigzag(seconds - tables.lastTime)*10 + digits), then uvarint(fraction) if digits > 0
	formHole      = 14 // in a shape only: the whole value comes from the stanza
	formHoleTyped = 15 // in a shape only: the value's header follows (see typedHeader), its payload comes from the stanza
	formLastID    = 16 // an id equal to the most recent id (origin-id repeating the message id)
	formPair      = 17 // first of the root's 'from' and 'to' of a message or iq: uvarint(2+rank) of the pair table, giving both; or 0 and a JID's body; or 1 and a value
	formPaired    = 18 // second of them: nothing if the first gave both, else as the first (a JID's body or a value)
	formRank      = 19 // + r: the value table's entry of recency rank r < rankForms
	rankForms     = 64
	formStatic    = formRank + rankForms // + vocab index; + len(vocab) + slot: value table
)

// formB64L is base64 of more than internMax characters (a photo, an
// avatar, an encrypted payload), in one line or broken into lines (vCard
// BINVAL): uvarint(n), then uvarint(layout) (0: one line, else
// b64Wrap.code), then n bytes. A shape keeps only the form (the length
// varies from one stanza to the next). It follows the value table's
// slots: a form for long values, placed where it moves no other code.
var formB64L = uint64(formStatic + len(vocab) + valueSlots)

// Echo forms (version 7), after formB64L: an id the other direction of the
// link carried, from the log of its ids (echo.go). formEchoEpoch names the
// generation (the other direction's epoch) then the id's number in it:
// uvarint(epoch), uvarint(number); formEcho, in the generation last named
// in this epoch, carries uvarint(zigzag(number - (last echoed number +
// 1))). A shape keeps the form; the rest is the stanza's.
var (
	formEcho      = formB64L + 1
	formEchoEpoch = formB64L + 2
	// formB64URLP (version 7): an id of one ASCII character that is not
	// in the base64url alphabet (':' in aioxmpp's ids) then at least 8
	// characters of it: uvarint(chars<<7 | the character), then the chars
	// packed as formB64URL packs them. Sized: a shape keeps the form and
	// that uvarint.
	formB64URLP = formB64L + 3
)

// A template reference is one byte, flagTemplate (and flagNext) with the
// template's age in bits 0-3 (0 = the newest template), or with tmplAgeMax
// there and the slot in the next byte.
const tmplAgeMax = 15

// A shaped stanza's first byte is flagShape with the shape's recency rank
// in the other six bits (0, 1, 2, 3, 4, 6); shapeRankMax there means that
// uvarint(rank-shapeRankMax) follows. The stanza's own flags are the shape's
// first byte.
const shapeRankMax = 63

func shapeByte(r int) byte {
	return flagShape | byte(r&0x1f) | byte(r>>5&1)<<6
}

func shapeRank(b byte) int {
	return int(b&0x1f) | int(b>>6&1)<<5
}

// shapeOf appends to dst the shape of a stanza's full form b (flags byte
// excluded): b with each hole (offset triples relative to off) replaced by
// formHole, or by formHoleTyped and the value's header.
func shapeOf(dst, b []byte, holes []int, off int) []byte {
	p := 0
	for i := 0; i < len(holes); i += 3 {
		dst = append(dst, b[p:holes[i]-off]...)
		if holes[i+1] == holes[i] {
			dst = append(dst, formHole)
		} else {
			dst = append(dst, formHoleTyped)
			dst = append(dst, b[holes[i]-off:holes[i+1]-off]...)
		}
		p = holes[i+2] - off
	}
	return append(dst, b[p:]...)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
