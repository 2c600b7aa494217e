package compress

// The encoder of the structural form: structEncoder writes each stanza of
// a batch as a template reference, a shape and its holes, the full form,
// or raw (see the package doc).

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// structEncoder appends the structural form of stanzas to out.
type structEncoder struct {
	t   *tables
	p   *parser // the parse stanza works from: own, or one of pre
	own parser
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
	b64    []byte // the characters of wrapped base64 (scratch)
	// pre holds the parses check made of the first stanzas of a batch
	// (of nchk checked), for stanza to reuse; stanza cur of the batch is
	// next.
	pre       [keepParses]preParse
	nchk, cur int
	rootTo    bool // the value being written is the root's 'to'
	// rnd counts the bytes of ids and hashes written in binary (UUID, hex,
	// base64, packed; at most internMax characters: longer ones, such as
	// avatars, do repeat): random to zstd.
	rnd int
	// echoed counts the values written as echoes; echoMin is the lowest
	// entry the current batch echoed, of generation echoMinEpoch (when
	// echoMinSet; the link's resumption rule).
	echoed       int
	echoMin      uint64
	echoMinEpoch uint32
	echoMinSet   bool
}

// count charges the bytes written since start to field f.
func (e *structEncoder) count(f string, start int) {
	if e.acct != nil {
		e.acct[f] += len(e.out) - start
	}
}

func (e *structEncoder) uv(v uint64) { e.out = binary.AppendUvarint(e.out, v) }

// stanza appends the structural form of one stanza: raw when it is outside
// the structure's limits, else a template reference, or its full form
// turned into a shape and its holes.
func (e *structEncoder) stanza(st []byte) {
	var size int
	var ok bool
	if e.cur < keepParses && sameBytes(e.pre[e.cur].st, st) {
		pp := &e.pre[e.cur]
		e.p, size, ok = &pp.p, pp.size, pp.ok
	} else {
		e.p = &e.own
		size, ok = structural(e.p, st)
	}
	e.cur++
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
	done, store, tslot := e.template(st, size)
	if done {
		return
	}
	if store {
		flags |= flagStore
	}
	base := len(e.out)
	e.out = append(e.out, flags)
	e.holes = e.holes[:0]
	e.vbytes = 0
	e.walk(e.p.ev)
	if store {
		e.t.stored(tslot)
	}
	e.shape(base)
	if e.acct != nil {
		e.acct["structure"] += len(e.out) - base - e.vbytes
	}
}

// Parses kept between a batch's check and its writing: a stanza is parsed
// once, not twice, when it is one of the first keepParses stanzas of its
// batch and at most keepParseMax bytes (which bounds what they hold).
const (
	keepParses   = 16
	keepParseMax = 16 << 10
)

// preParse is check's parse of one stanza: whether it crosses structurally
// and its decoded size.
type preParse struct {
	p    parser
	st   []byte
	size int
	ok   bool
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// begin starts a batch: check then sees its stanzas in order, then stanza.
func (e *structEncoder) begin() {
	for i := range min(e.nchk, keepParses) {
		e.pre[i].st = nil
	}
	e.nchk, e.cur = 0, 0
}

// check is decodedSize for the next stanza of the batch (the limits Encode
// checks before it writes anything), keeping the parse for stanza when it
// can.
func (e *structEncoder) check(st []byte) (int, error) {
	if len(st) > MaxStanzaSize {
		return decodedSize(&e.own, st)
	}
	p := &e.own
	keep := e.nchk < keepParses && len(st) <= keepParseMax
	if keep {
		p = &e.pre[e.nchk].p
	}
	n, ok := structural(p, st)
	if keep {
		e.pre[e.nchk].st, e.pre[e.nchk].size, e.pre[e.nchk].ok = st, n, ok
	}
	e.nchk++
	if !ok {
		return len(st), nil
	}
	return n, nil
}

// template writes the stanza as a reference to a kept template and its new
// 'to' when it repeats one but for its 'to' (done), or else reports
// whether the stanza becomes a template (store) and in which slot. The
// stanza was parsed into e.p and decodes to size bytes.
func (e *structEncoder) template(st []byte, size int) (done, store bool, tslot int) {
	to := rootTo(e.p.ev)
	if to == nil || len(st) > templateMax || size > templateMax {
		return false, false, 0
	}
	// The 'to' value is a slice of st when it had no entities.
	off := cap(st) - cap(to)
	if off <= 0 || off+len(to) > len(st) || &st[off] != &to[0] {
		return false, false, 0
	}
	e.key = strconv.AppendInt(e.key[:0], int64(off), 10)
	e.key = append(e.key, ':')
	e.key = append(e.key, st[:off]...)
	e.key = append(e.key, st[off+len(to):]...)
	slot, ok := e.t.tkeys[string(e.key)]
	if !ok {
		return false, true, e.t.storeKey(string(e.key))
	}
	p := len(e.out)
	if s, r, ok := e.nextTo(slot, to); ok {
		e.out = e.t.tmplRef(e.out, slot, len(e.t.tnames), flagNext)
		e.t.bare.touch(s)
		if r >= 0 {
			e.t.res.touch(r)
		}
		e.t.learn = false
		e.t.noteTo(s, r >= 0)
		e.t.learn = true
		e.t.copied(slot, s, r >= 0)
		e.count("template", p)
		return true, false, 0
	}
	e.out = e.t.tmplRef(e.out, slot, len(e.t.tnames), 0)
	e.count("template", p)
	e.rootTo = true
	e.t.noted, e.t.learn = false, false
	e.field([]byte("to"), to)
	e.rootTo, e.t.learn = false, true
	if e.t.noted {
		e.t.copied(slot, e.t.tnext, e.t.tres)
	}
	return true, false, 0
}

// rootPair is what the encoder knows of the root's 'from' and 'to' (the
// pair table): their events, whether they go as a pair (on), as JIDs, and
// the pair's rank in the table (-1: new).
type rootPair struct {
	from, to, nroot, rank int
	on, jids              bool
}

// pairOf finds the root's first 'from' and 'to' and, for a message or iq
// with both, looks the pair up in the pair table (a new one enters it).
func (e *structEncoder) pairOf(ev []event) rootPair {
	pr := rootPair{from: -1, to: -1, nroot: 1, rank: -1}
	for ; pr.nroot < len(ev) && ev[pr.nroot].kind == evAttr; pr.nroot++ {
		switch string(ev[pr.nroot].name) {
		case "from":
			if pr.from < 0 {
				pr.from = pr.nroot
			}
		case "to":
			if pr.to < 0 {
				pr.to = pr.nroot
			}
		}
	}
	if pr.from < 0 || pr.to < 0 || string(ev[0].name) == "presence" || !pairable(ev[pr.from].val, ev[pr.to].val) {
		return pr
	}
	pr.on = true
	_, _, _, _, _, ok1 := splitJID(ev[pr.from].val)
	_, _, _, _, _, ok2 := splitJID(ev[pr.to].val)
	pr.jids = ok1 && ok2
	e.key = pairKey(e.key[:0], ev[pr.from].val, ev[pr.to].val)
	if s, ok := e.t.pairs.lookup(e.key); ok {
		pr.rank = e.t.pairs.rank(s)
		e.t.pairs.touch(s)
	} else {
		e.t.pairs.insert(string(e.key))
	}
	return pr
}

// walk writes the full form of the parsed stanza ev, noting its holes.
func (e *structEncoder) walk(ev []event) {
	pr := e.pairOf(ev)
	for k, x := range ev {
		if x.kind != evAttr && k > 0 && (ev[k-1].kind == evStart || ev[k-1].kind == evAttr) {
			e.uv(0) // end of attributes
		}
		switch x.kind {
		case evStart:
			e.name(x.name, itemReserved)
		case evAttr:
			e.name(x.name, 1)
			if pr.on && (k == pr.from || k == pr.to) {
				e.pairValue(pr, k == min(pr.from, pr.to), x)
				continue
			}
			e.rootTo = k < pr.nroot && string(x.name) == "to"
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
}

// pairValue writes the root's 'from' or 'to' (x) as formPair (the first
// of the two) or formPaired: a typed hole.
func (e *structEncoder) pairValue(pr rootPair, first bool, x event) {
	p := len(e.out)
	if first {
		e.uv(formPair)
		switch {
		case pr.rank >= 0:
			e.uv(uint64(pr.rank + 2))
		case pr.jids:
			e.uv(0)
		default:
			e.uv(1)
		}
	} else {
		e.uv(formPaired)
	}
	if pr.rank < 0 {
		e.rootTo = string(x.name) == "to"
		if pr.jids {
			e.jidBody(x.val)
		} else {
			e.value(x.name, x.val)
		}
		e.rootTo = false
	}
	e.holes = append(e.holes, p, p+typedHeader(e.out[p:]), len(e.out)) // a typed hole: its form
	e.vbytes += len(e.out) - p
	e.count("pair", p)
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

// field writes a top-level attribute or text value and notes it as a hole
// of the shape unless it is empty or a vocab entry.
func (e *structEncoder) field(attr, v []byte) {
	p := len(e.out)
	k := e.value(attr, v)
	if k.hole(attr != nil) {
		e.holes = append(e.holes, p, p+typedHeader(e.out[p:]), len(e.out))
	}
	if e.acct != nil {
		e.vbytes += len(e.out) - p
		f := k.String()
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

// nextTo reports whether the 'to' of a copy of template slot is the JID
// tables.predict predicts, and returns its bare slot and its resource slot
// (-1: none).
func (e *structEncoder) nextTo(slot int, to []byte) (int32, int32, bool) {
	ps, pr, ok := e.t.predict(slot)
	if !ok {
		return 0, 0, false
	}
	_, _, bare, res, hasRes, ok := splitJID(to)
	if !ok || hasRes != (pr >= 0) {
		return 0, 0, false
	}
	s, ok := e.t.bare.lookup(bare)
	if !ok || s != ps {
		return 0, 0, false
	}
	if hasRes && e.t.res.vals[pr] != string(res) {
		return 0, 0, false
	}
	return s, pr, true
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

// value writes v in the best form for it and returns the form's kind. A
// value other than an id that crossed in one of the forms echoLogged names
// enters the log of this direction's values (the other direction may echo
// it), as the decoder's value does.
func (e *structEncoder) value(attr, v []byte) valueKind {
	k := e.writeValue(attr, v)
	if string(attr) != "id" && echoLogged(k, len(v)) {
		e.t.logValue(v)
	}
	return k
}

func (e *structEncoder) writeValue(attr, v []byte) valueKind {
	if len(v) == 0 {
		e.uv(formEmpty)
		return kindEmpty
	}
	isID := string(attr) == "id"
	if isID {
		if s, ok := e.t.ids.index[string(v)]; ok {
			if s == e.t.ids.last() {
				e.uv(formLastID)
				return kindLast
			}
			e.out = append(e.out, formRing, byte(s))
			return kindRing
		}
	}
	if i, ok := vocabIndex[string(v)]; ok {
		e.uv(formStatic + uint64(i))
		return kindVocab
	}
	if !isID {
		if s, ok := e.t.values.lookup(v); ok {
			if r := e.t.values.rankBelow(s, rankForms); r >= 0 {
				e.uv(formRank + uint64(r))
			} else {
				e.uv(formStatic + uint64(len(vocab)) + uint64(s))
			}
			e.t.values.touch(s)
			return kindTable
		}
		if jidAttr(attr) && e.jid(v) {
			return kindJID
		}
	}
	if isID {
		if e.writeEcho(v, echoMinLen) {
			e.t.pushID(string(v))
			return kindEcho
		}
		e.t.pushID(string(v))
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
			return kindTime
		}
	}
	if !isID && len(v) <= echoValueMax && e.writeEcho(v, echoValueMin) {
		if len(v) <= internMax {
			e.t.values.insert(string(v)) // as a literal would be
		}
		return kindEcho
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
		return kindUUID
	case len(v) >= 8 && len(v)%2 == 0 && isLowerHex(v):
		e.uv(formHex + intern)
		e.uv(uint64(len(v) / 2))
		e.out, _ = hex.AppendDecode(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) / 2
		}
		return kindHex
	case len(v) > internMax && e.longB64(v):
		return kindB64L
	case isB64(v):
		e.uv(formB64 + intern)
		e.uv(uint64(b64Len(v)))
		e.out, _ = base64.StdEncoding.AppendDecode(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) / 4 * 3
		}
		return kindB64
	case len(v) >= 8 && (isID || looksRandom(v)) && isB64URLAlpha(v):
		e.uv(formB64URL + intern)
		e.uv(uint64(len(v)))
		e.out = packB64URL(e.out, v)
		if len(v) <= internMax {
			e.rnd += len(v) * 6 / 8
		}
		return kindPacked
	case isID && len(v) >= 9 && v[0] >= 0x20 && v[0] < 0x80 && b64urlIndex[v[0]] < 0 && isB64URLAlpha(v[1:]):
		e.uv(formB64URLP)
		e.uv(uint64(len(v)-1)<<7 | uint64(v[0]))
		e.out = packB64URL(e.out, v[1:])
		if len(v) <= internMax {
			e.rnd += (len(v) - 1) * 6 / 8
		}
		return kindPacked
	default:
		e.uv(formLit + intern)
		e.uv(uint64(len(v)))
		e.out = append(e.out, v...)
		return kindLiteral
	}
}

// longB64 writes v in formB64L if it is base64, in one line or broken into
// lines (vCard BINVAL): uvarint(bytes), its layout (0 or b64Wrap.code),
// the bytes.
func (e *structEncoder) longB64(v []byte) bool {
	if bytes.IndexByte(v, '\n') < 0 {
		if !isB64(v) {
			return false
		}
		e.uv(formB64L)
		e.uv(uint64(b64Len(v)))
		e.uv(0)
		e.out, _ = base64.StdEncoding.AppendDecode(e.out, v)
		return true
	}
	chars, w, ok := wrappedB64(e.b64, v)
	if chars != nil {
		e.b64 = chars[:0]
	}
	if !ok {
		return false
	}
	e.uv(formB64L)
	e.uv(uint64(b64Len(chars)))
	e.uv(w.code())
	e.out, _ = base64.StdEncoding.AppendDecode(e.out, chars)
	return true
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
	b, ok := e.t.bare.lookup(bare)
	if ok {
		e.t.bare.touch(b)
		e.uv(1 + uint64(b))
	} else {
		e.uv(0)
		e.uv(uint64(len(local)))
		e.out = append(e.out, local...)
		e.value(nil, domain)
		b = e.t.bare.insert(string(bare))
		e.t.lastRes[b] = -1
	}
	if e.rootTo {
		e.t.noteTo(b, hasRes)
	}
	switch {
	case !hasRes:
		e.uv(0)
	default:
		if s, ok := e.t.res.lookup(res); ok {
			e.t.res.touch(s)
			if e.t.lastRes[b] == s {
				e.uv(2)
			} else {
				e.uv(3 + uint64(s))
			}
			e.t.lastRes[b] = s
		} else {
			e.uv(1)
			e.uv(uint64(len(res)))
			e.out = append(e.out, res...)
			e.t.lastRes[b] = e.t.res.insert(string(res))
		}
	}
}
