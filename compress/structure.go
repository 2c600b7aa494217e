package compress

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Stanza flags (first byte of every stanza in a batch).
const (
	flagRaw      = 1 << 0 // raw form: uvarint(len) and the bytes follow
	flagTextFull = 1 << 1 // text escapes ' and " as &apos; &quot; (Prosody does)
	flagDQ       = 1 << 2 // attributes are written in double quotes
	flagStore    = 1 << 3 // keep the decoded stanza as the next template
	flagTemplate = 1 << 4 // a template: bits 0-3 its age (tmplByte), then the value of 'to'
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

// tables is the state both ends mirror during an epoch.
type tables struct {
	values, bare, res, names, shapes, pairs *lru
	ids                                     ring
	// templates: encoder keys (stanza without its 'to' value) or decoder
	// halves (XML before and after the 'to' value), FIFO at tpos.
	tkeys  map[string]int
	tnames []string
	tpre   [][]byte
	tsuf   [][]byte
	tpos   int
	// tnext is the bare-JID slot of the last root 'to' written in JID form
	// without a resource, or -1; succ[s] the slot of the root 'to' that
	// followed slot s last time, or -1. A server fans a presence out to a
	// roster in the same order every time (and, the first time, usually in
	// the order the contacts were first seen), so next predicts the
	// recipient of the next copy.
	tnext int32
	succ  []int32
	// lastTime is the last timestamp written (unix seconds): the next one
	// crosses as the difference.
	lastTime int64
}

// next is the predicted bare slot of the root 'to' after tnext (>= 0):
// the one that followed it last time, else the slot after it.
func (t *tables) next() int32 {
	if s := t.succ[t.tnext]; s >= 0 {
		return s
	}
	return t.tnext + 1
}

func (t *tables) storeKey(key string) {
	if len(t.tnames) < templateSlots {
		t.tnames = append(t.tnames, key)
		t.tkeys[key] = len(t.tnames) - 1
		return
	}
	if t.tkeys[t.tnames[t.tpos]] == t.tpos {
		delete(t.tkeys, t.tnames[t.tpos])
	}
	t.tnames[t.tpos] = key
	t.tkeys[key] = t.tpos
	t.tpos = (t.tpos + 1) % templateSlots
}

// A template reference is one byte, flagTemplate (and flagNext) with the
// template's age in bits 0-3 (0 = the newest template), or with tmplAgeMax
// there and the slot in the next byte.
const tmplAgeMax = 15

// tmplRef appends a reference to template slot of n kept.
func (t *tables) tmplRef(dst []byte, slot, n int, next byte) []byte {
	newest := n - 1
	if n == templateSlots {
		newest = (t.tpos + templateSlots - 1) % templateSlots
	}
	if age := (newest - slot + n) % n; age < tmplAgeMax {
		return append(dst, flagTemplate|next|byte(age))
	}
	return append(dst, flagTemplate|next|tmplAgeMax, byte(slot))
}

// tmplSlot reads a template reference's slot (of n kept); the first byte,
// b, has been read from in at pos-1.
func (t *tables) tmplSlot(b byte, in []byte, pos *int, n int) (int, bool) {
	age := int(b & 0x0f)
	if age == tmplAgeMax {
		if *pos >= len(in) || int(in[*pos]) >= n {
			return 0, false
		}
		*pos++
		return int(in[*pos-1]), true
	}
	if age >= n {
		return 0, false
	}
	newest := n - 1
	if n == templateSlots {
		newest = (t.tpos + templateSlots - 1) % templateSlots
	}
	return (newest - age + n) % n, true
}

func (t *tables) storeHalves(pre, suf []byte) {
	if len(t.tpre) < templateSlots {
		t.tpre = append(t.tpre, pre)
		t.tsuf = append(t.tsuf, suf)
		return
	}
	t.tpre[t.tpos], t.tsuf[t.tpos] = pre, suf
	t.tpos = (t.tpos + 1) % templateSlots
}

func newTables(enc bool) *tables {
	t := &tables{
		values: newLRU(valueSlots, enc),
		bare:   newLRU(bareSlots, enc),
		res:    newLRU(resourceSlots, enc),
		names:  newLRU(nameSlots, enc),
		shapes: newLRU(shapeSlots, enc),
		pairs:  newLRU(pairSlots, enc),
		tnext:  -1,
		succ:   make([]int32, bareSlots),
	}
	for i := range t.succ {
		t.succ[i] = -1
	}
	if enc {
		t.ids.index = make(map[string]int, ringSize)
		t.tkeys = make(map[string]int, templateSlots)
	}
	return t
}

func (t *tables) reset() {
	t.values.reset()
	t.bare.reset()
	t.res.reset()
	t.names.reset()
	t.shapes.reset()
	t.pairs.reset()
	t.ids.reset()
	clear(t.tkeys)
	t.tnames, t.tpre, t.tsuf, t.tpos = t.tnames[:0], t.tpre[:0], t.tsuf[:0], 0
	t.tnext = -1
	t.lastTime = 0
	for i := range t.succ {
		t.succ[i] = -1
	}
}

// noteTo records the bare slot of a root 'to' JID (see tnext).
func (t *tables) noteTo(slot int32, hasRes bool) {
	if hasRes {
		slot = -1
	}
	if t.tnext >= 0 && slot >= 0 {
		t.succ[t.tnext] = slot
	}
	t.tnext = slot
}

// structEncoder appends the structural form of stanzas to out.
type structEncoder struct {
	t   *tables
	p   parser
	out []byte
	key []byte
	// acct, when not nil, counts structural bytes by field (tests and
	// tuning only).
	acct map[string]int
	// holes are the (start, payload, end) offsets in out of the stanza's
	// values that are not part of its shape: [start, payload) is the
	// value's header, kept in the shape (typedHeader), [payload, end) what
	// a stanza of that shape carries.
	holes  []int
	vbytes int // value bytes of the current stanza (accounting)
	tmp    []byte
	rootTo bool // the value being written is the root's 'to'
	// rnd counts the bytes of ids and hashes written in binary (UUID, hex,
	// base64, packed; at most internMax characters: longer ones, such as
	// avatars, do repeat): random to zstd.
	rnd int
}

// count charges the bytes written since start to field f.
func (e *structEncoder) count(f string, start int) {
	if e.acct != nil {
		e.acct[f] += len(e.out) - start
	}
}

func (e *structEncoder) uv(v uint64) { e.out = binary.AppendUvarint(e.out, v) }

func (e *structEncoder) stanza(st []byte) {
	size, ok := structural(&e.p, st)
	if !ok {
		e.out = append(e.out, flagRaw)
		e.uv(uint64(len(st)))
		e.out = append(e.out, st...)
		return
	}
	var flags byte
	if e.p.textFull() {
		flags |= flagTextFull
	}
	if e.p.dq {
		flags |= flagDQ
	}
	ev := e.p.ev
	if to := rootTo(ev); to != nil && len(st) <= templateMax && size <= templateMax {
		// The 'to' value is a slice of st when it had no entities.
		off := cap(st) - cap(to)
		if off > 0 && off+len(to) <= len(st) && &st[off] == &to[0] {
			e.key = strconv.AppendInt(e.key[:0], int64(off), 10)
			e.key = append(e.key, ':')
			e.key = append(e.key, st[:off]...)
			e.key = append(e.key, st[off+len(to):]...)
			if slot, ok := e.t.tkeys[string(e.key)]; ok {
				p := len(e.out)
				if s, ok := e.nextTo(to); ok {
					e.out = e.t.tmplRef(e.out, slot, len(e.t.tnames), flagNext)
					e.t.bare.touch(s)
					e.t.noteTo(s, false)
					e.count("template", p)
					return
				}
				e.out = e.t.tmplRef(e.out, slot, len(e.t.tnames), 0)
				e.count("template", p)
				e.rootTo = true
				e.field([]byte("to"), to)
				e.rootTo = false
				return
			}
			e.t.storeKey(string(e.key))
			flags |= flagStore
		}
	}
	base := len(e.out)
	e.out = append(e.out, flags)
	e.holes = e.holes[:0]
	e.vbytes = 0
	nroot := 1 // events of the root's start tag
	pf, pt := -1, -1
	for nroot < len(ev) && ev[nroot].kind == evAttr {
		switch string(ev[nroot].name) {
		case "from":
			if pf < 0 {
				pf = nroot
			}
		case "to":
			if pt < 0 {
				pt = nroot
			}
		}
		nroot++
	}
	pairRank, pairOn, pairJIDs := -1, false, false
	if pf > 0 && pt > 0 && string(ev[0].name) != "presence" && pairable(ev[pf].val, ev[pt].val) {
		pairOn = true
		_, _, _, _, _, ok1 := splitJID(ev[pf].val)
		_, _, _, _, _, ok2 := splitJID(ev[pt].val)
		pairJIDs = ok1 && ok2
		e.key = pairKey(e.key[:0], ev[pf].val, ev[pt].val)
		if s, ok := e.t.pairs.lookup(e.key); ok {
			pairRank = e.t.pairs.rank(s)
			e.t.pairs.touch(s)
		} else {
			e.t.pairs.insert(string(e.key))
		}
	}
	for k, x := range ev {
		if x.kind != evAttr && k > 0 && (ev[k-1].kind == evStart || ev[k-1].kind == evAttr) {
			e.uv(0) // end of attributes
		}
		switch x.kind {
		case evStart:
			e.name(x.name, itemReserved)
		case evAttr:
			e.name(x.name, 1)
			if pairOn && (k == pf || k == pt) {
				p := len(e.out)
				if k == min(pf, pt) {
					e.uv(formPair)
					switch {
					case pairRank >= 0:
						e.uv(uint64(pairRank + 2))
					case pairJIDs:
						e.uv(0)
					default:
						e.uv(1)
					}
				} else {
					e.uv(formPaired)
				}
				if pairRank < 0 {
					e.rootTo = string(x.name) == "to"
					if pairJIDs {
						e.jidBody(x.val)
					} else {
						e.value(x.name, x.val)
					}
					e.rootTo = false
				}
				e.holes = append(e.holes, p, p+1, len(e.out))
				e.vbytes += len(e.out) - p
				e.count("pair", p)
				continue
			}
			e.rootTo = k < nroot && string(x.name) == "to"
			e.field(x.name, x.val)
			e.rootTo = false
		case evText:
			e.uv(itemText)
			e.field(nil, x.val)
		case evEnd:
			e.uv(itemEnd)
		case evEndEmpty:
			e.uv(itemEndEmpty)
		}
	}
	e.shape(base)
	if e.acct != nil {
		e.acct["structure"] += len(e.out) - base - e.vbytes
	}
}

// shape replaces the full form just written at base by a reference to an
// identical shape (the form with every value outside vocab cut out) seen
// before, followed by the cut-out values. Either way both ends then know
// the shape (see shapeOf).
func (e *structEncoder) shape(base int) {
	e.key = append(e.key[:0], e.out[base])
	e.key = shapeOf(e.key, e.out[base+1:], e.holes, base+1)
	if len(e.key) > shapeMax {
		return
	}
	// Rewrite in place: a new shape inline or a known one's rank, then the
	// holes' bytes (they only move towards the front).
	e.tmp = e.tmp[:0]
	for i := 0; i < len(e.holes); i += 3 {
		e.tmp = append(e.tmp, e.out[e.holes[i+1]:e.holes[i+2]]...)
	}
	s, ok := e.t.shapes.lookup(e.key)
	if !ok {
		e.t.shapes.insert(string(e.key))
		e.out = append(e.out[:base], e.key[0]|flagNext)
		e.uv(uint64(len(e.key) - 1))
		e.out = append(e.out, e.key[1:]...)
		e.out = append(e.out, e.tmp...)
		return
	}
	r := e.t.shapes.rank(s)
	e.t.shapes.touch(s)
	e.out = append(e.out[:base], shapeByte(min(r, shapeRankMax)))
	if r >= shapeRankMax {
		e.uv(uint64(r - shapeRankMax))
	}
	e.out = append(e.out, e.tmp...)
}

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

// typedHeader returns the length of the header of the value encoded at the
// start of v that a shape keeps (so that stanzas of the shape carry only
// the rest): the form of a UUID, JID, timestamp or id-ring reference, the
// form and length of hex, base64 and packed values; 0 for other forms
// (literals and table references: their form varies from one stanza to the
// next, so they stay whole in the stanza).
func typedHeader(v []byte) int {
	form, n := binary.Uvarint(v)
	if n <= 0 {
		return 0
	}
	switch form {
	case formUUID, formUUIDI, formJID, formTime, formRing, formPair, formPaired:
		return n
	case formHex, formHexI, formB64, formB64I, formB64URL, formB64URLI:
		if _, m := binary.Uvarint(v[n:]); m > 0 {
			return n + m
		}
	}
	return 0
}

// field writes a top-level attribute or text value and notes it as a hole
// of the shape unless it is empty or a vocab entry.
func (e *structEncoder) field(attr, v []byte) {
	p := len(e.out)
	f := e.value(attr, v)
	if f != "empty" && f != "last" && (f != "vocab" || attr == nil) {
		e.holes = append(e.holes, p, p+typedHeader(e.out[p:]), len(e.out))
	}
	if e.acct != nil {
		e.vbytes += len(e.out) - p
		switch {
		case attr == nil:
			f = "text:" + f
		case string(attr) == "id":
			f = "id:" + f
		default:
			f = string(attr) + ":" + f
		}
		e.count(f, p)
	}
}

// name writes an element or attribute name: reserved codes below r, then
// r = new name (uvarint(len), bytes), then vocab, then the name table.
func (e *structEncoder) name(n []byte, r uint64) {
	if i, ok := vocabIndex[string(n)]; ok {
		e.uv(r + 1 + uint64(i))
		return
	}
	if s, ok := e.t.names.lookup(n); ok {
		e.t.names.touch(s)
		e.uv(r + 1 + uint64(len(vocab)) + uint64(s))
		return
	}
	e.uv(r)
	e.uv(uint64(len(n)))
	e.out = append(e.out, n...)
	e.t.names.insert(string(n))
}

// nextTo reports whether a template's 'to' is the bare JID tables.next
// predicts, and returns its slot.
func (e *structEncoder) nextTo(to []byte) (int32, bool) {
	if e.t.tnext < 0 {
		return 0, false
	}
	_, _, bare, _, hasRes, ok := splitJID(to)
	if !ok || hasRes {
		return 0, false
	}
	s, ok := e.t.bare.lookup(bare)
	return s, ok && s == e.t.next()
}

// pairable reports whether a root's 'from' and 'to' go to the pair table.
func pairable(from, to []byte) bool {
	return len(from) > 0 && len(to) > 0 && len(from) <= maxInterned && len(to) <= maxInterned
}

// pairKey is the pair table's entry for from and to (XML has no NUL).
func pairKey(dst, from, to []byte) []byte {
	dst = append(dst, from...)
	dst = append(dst, 0)
	return append(dst, to...)
}

// rootTo returns the value of the root element's 'to' attribute.
func rootTo(ev []event) []byte {
	for _, x := range ev[1:] {
		if x.kind != evAttr {
			break
		}
		if string(x.name) == "to" && len(x.val) > 0 {
			return x.val
		}
	}
	return nil
}

func jidAttr(name []byte) bool {
	switch string(name) {
	case "from", "to", "jid", "by":
		return true
	}
	return false
}

// value writes v in the best form for it and names the form.
func (e *structEncoder) value(attr, v []byte) string {
	if len(v) == 0 {
		e.uv(formEmpty)
		return "empty"
	}
	isID := string(attr) == "id"
	if isID {
		if s, ok := e.t.ids.index[string(v)]; ok {
			if s == e.t.ids.last() {
				e.uv(formLastID)
				return "last"
			}
			e.out = append(e.out, formRing, byte(s))
			return "ring"
		}
	}
	if i, ok := vocabIndex[string(v)]; ok {
		e.uv(formStatic + uint64(i))
		return "vocab"
	}
	if !isID {
		if s, ok := e.t.values.lookup(v); ok {
			if r := e.t.values.rankBelow(s, rankForms); r >= 0 {
				e.uv(formRank + uint64(r))
			} else {
				e.uv(formStatic + uint64(len(vocab)) + uint64(s))
			}
			e.t.values.touch(s)
			return "table"
		}
		if jidAttr(attr) && e.jid(v) {
			return "jid"
		}
	}
	if isID {
		e.t.ids.push(string(v))
	}
	if isTimestamp(v) {
		t, digits, frac, ok := parseTimestamp(v)
		if ok {
			e.uv(formTime)
			e.uv(zigzag(t-e.t.lastTime)*10 + uint64(digits))
			if digits > 0 {
				e.uv(frac)
			}
			e.t.lastTime = t
			return "time"
		}
	}
	intern := uint64(0)
	if !isID && len(v) <= internMax {
		intern = 1
		e.t.values.insert(string(v))
	}
	switch {
	case isUUID(v):
		e.uv(formUUID + intern)
		e.out = appendUUID(e.out, v)
		e.rnd += 16
		return "uuid"
	case len(v) >= 8 && len(v)%2 == 0 && isLowerHex(v):
		e.uv(formHex + intern)
		e.uv(uint64(len(v) / 2))
		e.out, _ = hex.AppendDecode(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) / 2
		}
		return "hex"
	case isB64(v):
		e.uv(formB64 + intern)
		e.uv(uint64(len(v)/4*3 - padding(v)))
		e.out, _ = base64.StdEncoding.AppendDecode(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) / 4 * 3
		}
		return "b64"
	case len(v) >= 8 && (isID || looksRandom(v)) && isB64URLAlpha(v):
		e.uv(formB64URL + intern)
		e.uv(uint64(len(v)))
		e.out = packB64URL(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) * 6 / 8
		}
		return "packed"
	default:
		e.uv(formLit + intern)
		e.uv(uint64(len(v)))
		e.out = append(e.out, v...)
		return "literal"
	}
}

// jid writes v in JID form if it splits cleanly into parts.
func (e *structEncoder) jid(v []byte) bool {
	if _, _, _, _, _, ok := splitJID(v); !ok {
		return false
	}
	e.uv(formJID)
	e.jidBody(v)
	return true
}

// jidBody writes a JID that splitJID accepts without its form.
func (e *structEncoder) jidBody(v []byte) {
	local, domain, bare, res, hasRes, _ := splitJID(v)
	if s, ok := e.t.bare.lookup(bare); ok {
		e.t.bare.touch(s)
		e.uv(1 + uint64(s))
		if e.rootTo {
			e.t.noteTo(s, hasRes)
		}
	} else {
		e.uv(0)
		e.uv(uint64(len(local)))
		e.out = append(e.out, local...)
		e.value(nil, domain)
		s := e.t.bare.insert(string(bare))
		if e.rootTo {
			e.t.noteTo(s, hasRes)
		}
	}
	switch {
	case !hasRes:
		e.uv(0)
	default:
		if s, ok := e.t.res.lookup(res); ok {
			e.t.res.touch(s)
			e.uv(2 + uint64(s))
		} else {
			e.uv(1)
			e.uv(uint64(len(res)))
			e.out = append(e.out, res...)
			e.t.res.insert(string(res))
		}
	}
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

// structDecoder reads the structural form and writes canonical XML.
type structDecoder struct {
	t     *tables
	in    []byte
	pos   int
	out   []byte
	max   int // the most bytes out may hold (the block's bound)
	stack []string
	tmp   []byte
	// Shape mode: in holds the shape, alt and altPos the block.
	shaped bool
	alt    []byte
	altPos int
	holes  []int // full form: offsets in in of the values cut from the shape (as structEncoder.holes)
	key    []byte
	// pend holds a typed hole's header values (read from the shape) that
	// uv returns before reading from in.
	pend      [2]uint64
	npend, pi int
	rootTo    bool // the value being read is the root's 'to'
	// The root's 'from' and 'to' (pair table): whether the root is a
	// presence, whether a formPair may come next, the first 'from' and
	// 'to' read, and the second half of a pair still to be written.
	rootPresence, pairOK, sawFT, haveFrom, haveTo, pairHit, pairJIDs bool
	pfrom, pto, pairVal                                              []byte
	pairPend                                                         string
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func (d *structDecoder) uv() (uint64, error) {
	if d.pi < d.npend {
		d.pi++
		return d.pend[d.pi-1], nil
	}
	v, n := binary.Uvarint(d.in[d.pos:])
	if n <= 0 {
		return 0, corrupt("bad varint at %d", d.pos)
	}
	d.pos += n
	return v, nil
}

func (d *structDecoder) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(d.in)-d.pos) {
		return nil, corrupt("%d bytes declared, %d left", n, len(d.in)-d.pos)
	}
	b := d.in[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

// stanza decodes one stanza and appends its XML to d.out.
func (d *structDecoder) stanza() error {
	if d.pos >= len(d.in) {
		return corrupt("missing stanza")
	}
	flags := d.in[d.pos]
	d.pos++
	var shape string
	if flags&flagShape != 0 {
		r := uint64(shapeRank(flags))
		if r == shapeRankMax {
			x, err := d.uv()
			if err != nil {
				return err
			}
			r += x
		}
		slot, ok := d.t.shapes.atRank(r)
		if !ok {
			return corrupt("shape rank %d", r)
		}
		shape, _ = d.t.shapes.get(uint64(slot))
		flags = shape[0]
		shape = shape[1:]
		if flags&^(flagTextFull|flagDQ|flagStore) != 0 {
			return corrupt("shape flags %#x", flags)
		}
		flags |= flagShape
	} else if flags&(flagNext|flagTemplate) == flagNext {
		// A new shape inline: it enters the table, then fills as above.
		flags &^= flagNext
		if flags&^(flagTextFull|flagDQ|flagStore) != 0 {
			return corrupt("stanza flags %#x", flags|flagNext)
		}
		n, err := d.uv()
		if err != nil {
			return err
		}
		if n+1 > shapeMax {
			return corrupt("shape of %d bytes", n)
		}
		b, err := d.bytes(n)
		if err != nil {
			return err
		}
		d.key = append(append(d.key[:0], flags), b...)
		slot := d.t.shapes.insert(string(d.key))
		shape, _ = d.t.shapes.get(uint64(slot))
		shape = shape[1:]
		flags |= flagShape
	}
	if flags&^flagsKnown != 0 || flags&flagNext != 0 && flags&flagTemplate == 0 {
		return corrupt("stanza flags %#x", flags)
	}
	if flags&flagTemplate != 0 && flags&flagShape == 0 {
		slot, ok := d.t.tmplSlot(flags, d.in, &d.pos, len(d.t.tpre))
		if !ok {
			return corrupt("bad template reference")
		}
		var err error
		if flags&flagNext != 0 {
			if d.t.tnext < 0 {
				return corrupt("no bare JID to follow")
			}
			n := d.t.next()
			s, ok := d.t.bare.get(uint64(n))
			if !ok {
				return corrupt("no bare JID in slot %d", n)
			}
			d.t.noteTo(n, false)
			d.tmp = append(d.tmp[:0], s...)
		} else {
			d.rootTo = true
			d.tmp, err = d.value(d.tmp[:0], "to", true)
			d.rootTo = false
			if err != nil {
				return err
			}
		}
		d.out = append(d.out, d.t.tpre[slot]...)
		d.out = escapeAttr(d.out, d.tmp)
		d.out = append(d.out, d.t.tsuf[slot]...)
		return nil
	}
	if flags&flagRaw != 0 {
		n, err := d.uv()
		if err != nil {
			return err
		}
		if n > MaxStanzaSize || n > uint64(d.max-len(d.out)) {
			return corrupt("raw stanza of %d bytes", n)
		}
		b, err := d.bytes(n)
		if err != nil {
			return err
		}
		d.out = append(d.out, b...)
		return nil
	}
	d.holes = d.holes[:0]
	d.shaped = false
	d.npend, d.pi = 0, 0
	skStart := d.pos
	if flags&flagShape != 0 {
		d.shaped = true
		d.alt, d.altPos = d.in, d.pos
		d.in, d.pos = unsafe.Slice(unsafe.StringData(shape), len(shape)), 0
	}
	q := byte('\'')
	if flags&flagDQ != 0 {
		q = '"'
	}
	toStart, toEnd := -1, -1
	full := flags&flagTextFull != 0
	d.sawFT, d.haveFrom, d.haveTo, d.pairHit, d.pairPend = false, false, false, false, ""
	start := len(d.out)
	d.stack = d.stack[:0]
	item, err := d.uv()
	if err != nil {
		return err
	}
	for {
		if len(d.out)-start > MaxStanzaSize || len(d.out) > d.max {
			return corrupt("stanza exceeds %d bytes, or the batch %d", MaxStanzaSize, d.max)
		}
		switch {
		case item >= itemReserved:
			if len(d.stack) >= maxDepth {
				return corrupt("nesting deeper than %d", maxDepth)
			}
			name, err := d.name(item, itemReserved)
			if err != nil {
				return err
			}
			root := len(d.stack) == 0
			if root {
				d.rootPresence = name == "presence"
			}
			d.out = append(d.out, '<')
			d.out = append(d.out, name...)
			for {
				a, err := d.uv()
				if err != nil {
					return err
				}
				if a == 0 {
					break
				}
				an, err := d.name(a, 1)
				if err != nil {
					return err
				}
				ft := root && (an == "from" || an == "to")
				d.pairOK = ft && !d.rootPresence && !d.sawFT
				d.rootTo = root && an == "to"
				d.tmp, err = d.field(d.tmp[:0], an)
				d.rootTo, d.pairOK = false, false
				if err != nil {
					return err
				}
				if ft {
					d.sawFT = true
					if an == "from" && !d.haveFrom {
						d.pfrom, d.haveFrom = append(d.pfrom[:0], d.tmp...), true
					} else if an == "to" && !d.haveTo {
						d.pto, d.haveTo = append(d.pto[:0], d.tmp...), true
					}
				}
				if len(d.out)+len(d.tmp) > d.max {
					return corrupt("batch exceeds %d bytes", d.max)
				}
				d.out = append(d.out, ' ')
				d.out = append(d.out, an...)
				d.out = append(d.out, '=', q)
				isTo := len(d.stack) == 0 && an == "to" && len(d.tmp) > 0 && toStart < 0
				if isTo {
					toStart = len(d.out)
				}
				d.out = escapeAttr(d.out, d.tmp)
				if isTo {
					toEnd = len(d.out)
				}
				d.out = append(d.out, q)
			}
			if root {
				if d.pairPend != "" {
					return corrupt("pair without its %s", d.pairPend)
				}
				if !d.pairHit && d.haveFrom && d.haveTo && !d.rootPresence && pairable(d.pfrom, d.pto) {
					d.key = pairKey(d.key[:0], d.pfrom, d.pto)
					d.t.pairs.insert(string(d.key))
				}
			}
			next, err := d.uv()
			if err != nil {
				return err
			}
			switch next {
			case itemEnd:
				d.out = append(d.out, '/', '>')
			case itemEndEmpty:
				d.out = append(d.out, '>', '<', '/')
				d.out = append(d.out, name...)
				d.out = append(d.out, '>')
			default:
				d.out = append(d.out, '>')
				d.stack = append(d.stack, name)
				item = next
				continue
			}
		case item == itemText:
			if len(d.stack) == 0 {
				return corrupt("text outside the stanza")
			}
			d.tmp, err = d.field(d.tmp[:0], "")
			if err != nil {
				return err
			}
			d.out = escapeText(d.out, d.tmp, full)
		case item == itemEnd:
			if len(d.stack) == 0 {
				return corrupt("end without element")
			}
			name := d.stack[len(d.stack)-1]
			d.stack = d.stack[:len(d.stack)-1]
			d.out = append(d.out, '<', '/')
			d.out = append(d.out, name...)
			d.out = append(d.out, '>')
		default:
			return corrupt("item %d", item)
		}
		if len(d.stack) == 0 {
			if flags&flagStore != 0 {
				if toStart < 0 || len(d.out)-start > templateMax {
					return corrupt("bad template")
				}
				d.t.storeHalves(bytes.Clone(d.out[start:toStart]), bytes.Clone(d.out[toEnd:]))
			}
			if d.shaped {
				if d.pos != len(d.in) {
					return corrupt("shape longer than its stanza")
				}
				d.shaped = false
				d.in, d.pos, d.alt = d.alt, d.altPos, nil
				return nil
			}
			d.key = append(d.key[:0], flags)
			d.key = shapeOf(d.key, d.in[skStart:d.pos], d.holes, skStart)
			if len(d.key) <= shapeMax {
				d.t.shapes.insert(string(d.key))
			}
			return nil
		}
		if item, err = d.uv(); err != nil {
			return err
		}
	}
}

// field reads a top-level attribute or text value: in shape mode from the
// block where the shape has a hole; otherwise it notes the holes of the
// stanza's shape as the encoder does.
func (d *structDecoder) field(dst []byte, attr string) ([]byte, error) {
	if d.shaped {
		if d.pos < len(d.in) && (d.in[d.pos] == formHole || d.in[d.pos] == formHoleTyped) {
			d.pos++
			if d.in[d.pos-1] == formHoleTyped {
				if err := d.header(); err != nil {
					return dst, err
				}
			}
			d.in, d.alt = d.alt, d.in
			d.pos, d.altPos = d.altPos, d.pos
			dst, err := d.value(dst, attr, true)
			d.in, d.alt = d.alt, d.in
			d.pos, d.altPos = d.altPos, d.pos
			if err == nil && d.pi != d.npend {
				err = corrupt("typed hole header not used")
			}
			d.npend, d.pi = 0, 0
			return dst, err
		}
		return d.value(dst, attr, true)
	}
	p := d.pos
	dst, err := d.value(dst, attr, true)
	if err != nil {
		return dst, err
	}
	if form, _ := binary.Uvarint(d.in[p:]); form != formEmpty && form != formLastID &&
		(form < formStatic || form >= formStatic+uint64(len(vocab)) || attr == "") {
		d.holes = append(d.holes, p, p+typedHeader(d.in[p:d.pos]), d.pos)
	}
	return dst, nil
}

// header reads a typed hole's header from the shape into pend.
func (d *structDecoder) header() error {
	form, n := binary.Uvarint(d.in[d.pos:])
	if n <= 0 {
		return corrupt("bad typed hole")
	}
	d.pos += n
	d.pend[0], d.npend, d.pi = form, 1, 0
	switch form {
	case formUUID, formUUIDI, formJID, formTime, formRing, formPair, formPaired:
	case formHex, formHexI, formB64, formB64I, formB64URL, formB64URLI:
		l, m := binary.Uvarint(d.in[d.pos:])
		if m <= 0 {
			return corrupt("bad typed hole length")
		}
		d.pos += m
		d.pend[1], d.npend = l, 2
	default:
		return corrupt("typed hole of form %d", form)
	}
	return nil
}

func (d *structDecoder) name(code, r uint64) (string, error) {
	switch {
	case code == r:
		n, err := d.uv()
		if err != nil {
			return "", err
		}
		if n > maxInterned {
			return "", corrupt("name of %d bytes", n)
		}
		b, err := d.bytes(n)
		if err != nil {
			return "", err
		}
		if !validName(b, true) {
			return "", corrupt("bad name %q", b)
		}
		s := string(b)
		d.t.names.insert(s)
		return s, nil
	case code-r-1 < uint64(len(vocab)):
		return vocab[code-r-1], nil
	default:
		s, ok := d.t.names.get(code - r - 1 - uint64(len(vocab)))
		if !ok {
			return "", corrupt("name slot %d", code-r-1-uint64(len(vocab)))
		}
		return s, nil
	}
}

// value appends the value's unescaped bytes to dst. attr is the attribute
// name ("" for text and JID domains); jidOK is false inside a JID.
func (d *structDecoder) value(dst []byte, attr string, jidOK bool) ([]byte, error) {
	form, err := d.uv()
	if err != nil {
		return dst, err
	}
	isID := attr == "id"
	start := len(dst)
	switch form {
	case formEmpty:
		return dst, nil
	case formLastID:
		if !isID || len(d.t.ids.vals) == 0 {
			return dst, corrupt("no last id")
		}
		return append(dst, d.t.ids.vals[d.t.ids.last()]...), nil
	case formPair:
		if !d.pairOK {
			return dst, corrupt("pair out of place")
		}
		x, err := d.uv()
		if err != nil {
			return dst, err
		}
		d.pairPend = "from"
		if attr == "from" {
			d.pairPend = "to"
		}
		d.pairOK = false
		if x < 2 {
			d.pairJIDs = x == 0
			if d.pairJIDs {
				return d.jid(dst)
			}
			return d.value(dst, attr, true)
		}
		slot, ok := d.t.pairs.atRank(x - 2)
		if !ok {
			return dst, corrupt("pair rank %d", x-2)
		}
		p, _ := d.t.pairs.get(uint64(slot))
		i := strings.IndexByte(p, 0)
		from, to := p[:i], p[i+1:]
		d.pairHit = true
		if attr == "from" {
			d.pairVal = append(d.pairVal[:0], to...)
			return append(dst, from...), nil
		}
		d.pairVal = append(d.pairVal[:0], from...)
		return append(dst, to...), nil
	case formPaired:
		if d.pairPend == "" || d.pairPend != attr {
			return dst, corrupt("paired value out of place")
		}
		d.pairPend = ""
		if !d.pairHit {
			if d.pairJIDs {
				return d.jid(dst)
			}
			return d.value(dst, attr, true)
		}
		return append(dst, d.pairVal...), nil
	case formRing:
		if d.pos >= len(d.in) || int(d.in[d.pos]) >= len(d.t.ids.vals) {
			return dst, corrupt("bad id ring reference")
		}
		dst = append(dst, d.t.ids.vals[d.in[d.pos]]...)
		d.pos++
		return dst, nil
	case formJID:
		if !jidOK {
			return dst, corrupt("JID inside a JID")
		}
		return d.jid(dst)
	case formLit, formLitI:
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		b, err := d.bytes(n)
		if err != nil {
			return dst, err
		}
		dst = append(dst, b...)
	case formUUID, formUUIDI:
		b, err := d.bytes(16)
		if err != nil {
			return dst, err
		}
		dst = formatUUID(dst, b)
	case formHex, formHexI, formB64, formB64I:
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		b, err := d.bytes(n)
		if err != nil {
			return dst, err
		}
		if form <= formHexI {
			dst = hex.AppendEncode(dst, b)
		} else {
			dst = base64.StdEncoding.AppendEncode(dst, b)
		}
	case formB64URL, formB64URLI:
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		if n > MaxStanzaSize {
			return dst, corrupt("packed value of %d chars", n)
		}
		b, err := d.bytes((n*6 + 7) / 8)
		if err != nil {
			return dst, err
		}
		dst = unpackB64URL(dst, b, int(n))
	case formTime:
		x, err := d.uv()
		if err != nil {
			return dst, err
		}
		digits, frac := x%10, uint64(0)
		if digits > 0 {
			if frac, err = d.uv(); err != nil {
				return dst, err
			}
		}
		sec := d.t.lastTime + unzigzag(x/10)
		if sec < 0 || sec > 1<<40 || frac >= pow10[digits] {
			return dst, corrupt("bad timestamp")
		}
		d.t.lastTime = sec
		dst = appendTimestamp(dst, sec, int(digits), frac)
	default:
		if form >= formRank && form < formRank+rankForms {
			slot, ok := d.t.values.atRank(form - formRank)
			if !ok {
				return dst, corrupt("value rank %d", form-formRank)
			}
			s, _ := d.t.values.get(uint64(slot))
			return append(dst, s...), nil
		}
		if form < formStatic {
			return dst, corrupt("value form %d", form)
		}
		i := form - formStatic
		if i < uint64(len(vocab)) {
			return append(dst, vocab[i]...), nil
		}
		s, ok := d.t.values.get(i - uint64(len(vocab)))
		if !ok {
			return dst, corrupt("value slot %d", i-uint64(len(vocab)))
		}
		return append(dst, s...), nil
	}
	v := dst[start:]
	if form == formLitI || form == formUUIDI || form == formHexI || form == formB64I || form == formB64URLI {
		if len(v) > maxInterned {
			return dst, corrupt("interned value of %d bytes", len(v))
		}
		d.t.values.insert(string(v))
	}
	if isID {
		d.t.ids.push(string(v))
	}
	return dst, nil
}

func (d *structDecoder) jid(dst []byte) ([]byte, error) {
	b, err := d.uv()
	if err != nil {
		return dst, err
	}
	if b == 0 {
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		local, err := d.bytes(n)
		if err != nil {
			return dst, err
		}
		start := len(dst)
		dst = append(dst, local...)
		if n > 0 {
			dst = append(dst, '@')
		}
		if dst, err = d.value(dst, "", false); err != nil {
			return dst, err
		}
		if len(dst)-start > maxInterned {
			return dst, corrupt("bare JID of %d bytes", len(dst)-start)
		}
		b = 1 + uint64(d.t.bare.insert(string(dst[start:])))
	} else {
		s, ok := d.t.bare.get(b - 1)
		if !ok {
			return dst, corrupt("bare JID slot %d", b-1)
		}
		dst = append(dst, s...)
	}
	r, err := d.uv()
	if err != nil {
		return dst, err
	}
	if d.rootTo {
		d.t.noteTo(int32(b-1), r != 0)
	}
	switch r {
	case 0:
	case 1:
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		if n > maxInterned {
			return dst, corrupt("resource of %d bytes", n)
		}
		res, err := d.bytes(n)
		if err != nil {
			return dst, err
		}
		d.t.res.insert(string(res))
		dst = append(dst, '/')
		dst = append(dst, res...)
	default:
		s, ok := d.t.res.get(r - 2)
		if !ok {
			return dst, corrupt("resource slot %d", r-2)
		}
		dst = append(dst, '/')
		dst = append(dst, s...)
	}
	return dst, nil
}

// escapeAttr escapes all five XML special characters, as Prosody does.
func escapeAttr(dst, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

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

// isB64 reports whether v is padded standard base64 of at least 12 bytes
// that re-encodes to itself.
func isB64(v []byte) bool {
	if len(v) < 16 || len(v)%4 != 0 || len(v) > 4*maxInterned {
		return false
	}
	var buf [3 * maxInterned]byte
	n, err := base64.StdEncoding.Decode(buf[:], v)
	if err != nil {
		return false
	}
	var back [4 * maxInterned]byte
	base64.StdEncoding.Encode(back[:], buf[:n])
	return string(back[:len(v)]) == string(v)
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
