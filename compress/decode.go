package compress

// The decoder of the structural form: structDecoder reads what
// structEncoder wrote and writes canonical XML, holding every count and
// size to the limits (limits.go) before it allocates.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"unsafe"
)

// structDecoder reads the structural form and writes canonical XML.
type structDecoder struct {
	t     *tables
	in    []byte
	pos   int
	out   []byte
	max   int // the most bytes out may hold (the block's bound)
	stack []string
	tmp   []byte
	b64   []byte // wrapped base64's characters
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
	// The element walk: the attribute quote, and where the root's 'to'
	// value starts and ends in out (-1: none yet).
	q              byte
	toStart, toEnd int
	// The root's 'from' and 'to' (pair table): whether the root is a
	// presence, whether a formPair may come next, the first 'from' and
	// 'to' read, and the second half of a pair still to be written.
	rootPresence, pairOK, sawFT, haveFrom, haveTo, pairHit, pairJIDs bool
	pfrom, pto, pairVal                                              []byte
	pairPend                                                         string
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

// stanza decodes one stanza and appends its XML to d.out: its flags byte
// and shape header, then a template reference, a raw stanza, or the
// element walk (with the shape's holes filled from the block).
func (d *structDecoder) stanza() error {
	if d.pos >= len(d.in) {
		return corrupt("missing stanza")
	}
	flags := d.in[d.pos]
	d.pos++
	flags, shape, err := d.shapeHeader(flags)
	if err != nil {
		return err
	}
	if flags&^flagsKnown != 0 || flags&flagNext != 0 && flags&flagTemplate == 0 {
		return corrupt("stanza flags %#x", flags)
	}
	switch {
	case flags&flagTemplate != 0 && flags&flagShape == 0:
		return d.template(flags)
	case flags&flagRaw != 0:
		return d.raw()
	}
	return d.element(flags, shape)
}

// shapeHeader resolves a shape reference (by rank in the shape table) or a
// new shape inline (it enters the table): the stanza's flags are the
// shape's first byte, with flagShape set, and shape the rest. Other flags
// come back as they are, with no shape.
func (d *structDecoder) shapeHeader(flags byte) (byte, string, error) {
	var shape string
	switch {
	case flags&flagShape != 0:
		r := uint64(shapeRank(flags))
		if r == shapeRankMax {
			x, err := d.uv()
			if err != nil {
				return 0, "", err
			}
			r += x
		}
		slot, ok := d.t.shapes.atRank(r)
		if !ok {
			return 0, "", corrupt("shape rank %d", r)
		}
		shape, _ = d.t.shapes.get(uint64(slot))
		flags = shape[0]
		if flags&^(flagTextFull|flagDQ|flagStore) != 0 {
			return 0, "", corrupt("shape flags %#x", flags)
		}
	case flags&(flagNext|flagTemplate) == flagNext:
		flags &^= flagNext
		if flags&^(flagTextFull|flagDQ|flagStore) != 0 {
			return 0, "", corrupt("stanza flags %#x", flags|flagNext)
		}
		n, err := d.uv()
		if err != nil {
			return 0, "", err
		}
		if n+1 > shapeMax {
			return 0, "", corrupt("shape of %d bytes", n)
		}
		b, err := d.bytes(n)
		if err != nil {
			return 0, "", err
		}
		d.key = append(append(d.key[:0], flags), b...)
		slot := d.t.shapes.insert(string(d.key))
		shape, _ = d.t.shapes.get(uint64(slot))
	default:
		return flags, "", nil
	}
	return flags | flagShape, shape[1:], nil
}

// template writes a template with a new 'to': the value that follows, or
// the bare JID predicted to follow the last root 'to' (flagNext).
func (d *structDecoder) template(flags byte) error {
	slot, ok := d.t.tmplSlot(flags, d.in, &d.pos, len(d.t.tpre))
	if !ok {
		return corrupt("bad template reference")
	}
	if flags&flagNext != 0 {
		n, r, ok := d.t.predict(slot)
		if !ok {
			return corrupt("no recipient predicted for template %d", slot)
		}
		s, ok := d.t.bare.get(uint64(n))
		if !ok {
			return corrupt("no bare JID in slot %d", n)
		}
		d.tmp = append(d.tmp[:0], s...)
		if r >= 0 {
			res, ok := d.t.res.get(uint64(r))
			if !ok {
				return corrupt("no resource in slot %d", r)
			}
			d.tmp = append(d.tmp, '/')
			d.tmp = append(d.tmp, res...)
		}
		d.t.learn = false
		d.t.noteTo(n, r >= 0)
		d.t.learn = true
		d.t.copied(slot, n, r >= 0)
	} else {
		var err error
		d.rootTo = true
		d.t.noted, d.t.learn = false, false
		d.tmp, err = d.value(d.tmp[:0], "to", true)
		d.rootTo, d.t.learn = false, true
		if err != nil {
			return err
		}
		if d.t.noted {
			d.t.copied(slot, d.t.tnext, d.t.tres)
		}
	}
	d.out = append(d.out, d.t.tpre[slot]...)
	d.out = escapeAttr(d.out, d.tmp)
	d.out = append(d.out, d.t.tsuf[slot]...)
	return nil
}

// raw writes a stanza carried byte for byte.
func (d *structDecoder) raw() error {
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

// element walks a stanza's full form, or its shape (not empty) with the
// holes' values read from the block, and writes its XML.
func (d *structDecoder) element(flags byte, shape string) error {
	d.holes = d.holes[:0]
	d.shaped = false
	d.npend, d.pi = 0, 0
	skStart := d.pos
	if flags&flagShape != 0 {
		d.shaped = true
		d.alt, d.altPos = d.in, d.pos
		d.in, d.pos = unsafe.Slice(unsafe.StringData(shape), len(shape)), 0
	}
	d.q = '\''
	if flags&flagDQ != 0 {
		d.q = '"'
	}
	d.toStart, d.toEnd = -1, -1
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
			next, open, err := d.startTag(item)
			if err != nil {
				return err
			}
			if open {
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
			return d.end(flags, start, skStart)
		}
		if item, err = d.uv(); err != nil {
			return err
		}
	}
}

// startTag writes the start tag of the element of name code item and its
// attributes, and reads the item after them: if the element has content
// (open), it is on the stack and next is its first content item;
// otherwise it was closed (<x/> or <x></x>).
func (d *structDecoder) startTag(item uint64) (next uint64, open bool, err error) {
	if len(d.stack) >= maxDepth {
		return 0, false, corrupt("nesting deeper than %d", maxDepth)
	}
	name, err := d.name(item, itemReserved)
	if err != nil {
		return 0, false, err
	}
	root := len(d.stack) == 0
	if root {
		d.rootPresence = name == "presence"
	}
	d.out = append(d.out, '<')
	d.out = append(d.out, name...)
	if err := d.attrs(root); err != nil {
		return 0, false, err
	}
	next, err = d.uv()
	if err != nil {
		return 0, false, err
	}
	switch next {
	case itemEnd:
		d.out = append(d.out, '/', '>')
		return 0, false, nil
	case itemEndEmpty:
		d.out = append(d.out, '>', '<', '/')
		d.out = append(d.out, name...)
		d.out = append(d.out, '>')
		return 0, false, nil
	}
	d.out = append(d.out, '>')
	d.stack = append(d.stack, name)
	return next, true, nil
}

// attrs writes an element's attributes, up to the 0 that ends them; on
// the root it keeps the 'from' and 'to' for the pair table and where the
// 'to' value is written (for a template).
func (d *structDecoder) attrs(root bool) error {
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
		d.out = append(d.out, '=', d.q)
		isTo := root && an == "to" && len(d.tmp) > 0 && d.toStart < 0
		if isTo {
			d.toStart = len(d.out)
		}
		d.out = escapeAttr(d.out, d.tmp)
		if isTo {
			d.toEnd = len(d.out)
		}
		d.out = append(d.out, d.q)
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
	return nil
}

// end finishes an element stanza that started at start in d.out (skStart
// in the block): it becomes a template (flagStore), and a stanza in full
// form enters the shape table, as the encoder's does.
func (d *structDecoder) end(flags byte, start, skStart int) error {
	if flags&flagStore != 0 {
		if d.toStart < 0 || len(d.out)-start > templateMax {
			return corrupt("bad template")
		}
		d.t.stored(d.t.storeHalves(bytes.Clone(d.out[start:d.toStart]), bytes.Clone(d.out[d.toEnd:])))
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
	if form, _ := binary.Uvarint(d.in[p:]); kindOf(form).hole(attr != "") {
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
	switch k := kindOf(form); {
	case k.sized():
		l, m := binary.Uvarint(d.in[d.pos:])
		if m <= 0 {
			return corrupt("bad typed hole length")
		}
		d.pos += m
		d.pend[1], d.npend = l, 2
	case !k.typed():
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
		return d.pair(dst, attr)
	case formPaired:
		return d.paired(dst, attr)
	case formRing:
		if d.pos >= len(d.in) || int(d.in[d.pos]) >= len(d.t.ids.vals) {
			return dst, corrupt("bad id ring reference")
		}
		dst = append(dst, d.t.ids.vals[d.in[d.pos]]...)
		d.pos++
		return dst, nil
	case formEcho, formEchoEpoch:
		if dst, err = d.readEcho(dst, form); err != nil {
			return dst, err
		}
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
	case formB64L:
		n, err := d.uv()
		if err != nil {
			return dst, err
		}
		c, err := d.uv()
		if err != nil {
			return dst, err
		}
		w, ok := wrapOf(c)
		if !ok && c != 0 || n < 12 {
			return dst, corrupt("long base64 of %d bytes, layout %d", n, c)
		}
		b, err := d.bytes(n)
		if err != nil {
			return dst, err
		}
		size := base64.StdEncoding.EncodedLen(len(b))
		if c != 0 {
			size = w.size(size)
		}
		if size > MaxStanzaSize || size > d.max-len(d.out) {
			return dst, corrupt("long base64 of %d bytes", size)
		}
		if c == 0 {
			dst = base64.StdEncoding.AppendEncode(dst, b)
			break
		}
		d.b64 = base64.StdEncoding.AppendEncode(d.b64[:0], b)
		dst = w.append(dst, d.b64)
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
	case formB64URLP:
		x, err := d.uv()
		if err != nil {
			return dst, err
		}
		n, c := x>>7, byte(x&127)
		if !isID || n < 8 || n > MaxStanzaSize || c < 0x20 || b64urlIndex[c] >= 0 {
			return dst, corrupt("prefixed packed value: %d chars after %q in %q", n, c, attr)
		}
		b, err := d.bytes((n*6 + 7) / 8)
		if err != nil {
			return dst, err
		}
		dst = unpackB64URL(append(dst, c), b, int(n))
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
		return d.tableValue(dst, form)
	}
	v := dst[start:]
	echo := form == formEcho || form == formEchoEpoch
	if echo && !isID && (len(v) < echoValueMin || len(v) > echoValueMax) || echo && isID && len(v) < echoMinLen {
		return dst, corrupt("echoed value of %d bytes in %q", len(v), attr)
	}
	if form == formLitI || form == formUUIDI || form == formHexI || form == formB64I || form == formB64URLI ||
		echo && !isID && len(v) <= internMax {
		if len(v) > maxInterned {
			return dst, corrupt("interned value of %d bytes", len(v))
		}
		d.t.values.insert(string(v))
	}
	if isID {
		d.t.pushID(string(v))
	} else if echoLogged(kindOf(form), len(v)) {
		d.t.logValue(v)
	}
	return dst, nil
}

// pair reads formPair: the first of the root's 'from' and 'to' (attr),
// both from the pair table, or this one as a JID's body or a value.
func (d *structDecoder) pair(dst []byte, attr string) ([]byte, error) {
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
}

// paired reads formPaired: the second of the pair, given by the first or
// following it as the first did.
func (d *structDecoder) paired(dst []byte, attr string) ([]byte, error) {
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
}

// tableValue appends a value given by reference: a value-table entry by
// recency rank, a vocab entry, or a value-table slot.
func (d *structDecoder) tableValue(dst []byte, form uint64) ([]byte, error) {
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
		d.t.lastRes[b-1] = -1
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
		d.t.lastRes[b-1] = d.t.res.insert(string(res))
		dst = append(dst, '/')
		dst = append(dst, res...)
	default:
		slot := r - 3
		if r == 2 {
			if d.t.lastRes[b-1] < 0 {
				return dst, corrupt("no last resource for bare JID slot %d", b-1)
			}
			slot = uint64(d.t.lastRes[b-1])
		}
		s, ok := d.t.res.get(slot)
		if !ok {
			return dst, corrupt("resource slot %d", slot)
		}
		d.t.lastRes[b-1] = int32(slot)
		dst = append(dst, '/')
		dst = append(dst, s...)
	}
	return dst, nil
}
