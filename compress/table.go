package compress

// lru is a table of strings mirrored on both ends of the link. Entries live
// in numbered slots that do not move; when the table is full, the least
// recently used slot is reused. Both ends apply the same operations (insert
// on a new string, touch on a reference) in the same order, so slot numbers
// agree without ever being sent. The encoder also indexes entries by value.
type lru struct {
	vals  []string
	prev  []int32 // doubly linked recency list over slots, head = most recent
	next  []int32
	head  int32
	tail  int32
	index map[string]int32 // encoder only: value -> slot
	max   int              // capacity in slots
}

func newLRU(capacity int, withIndex bool) *lru {
	t := &lru{max: capacity, head: -1, tail: -1}
	if withIndex {
		t.index = make(map[string]int32, capacity)
	}
	return t
}

func (t *lru) reset() {
	t.vals = t.vals[:0]
	t.prev = t.prev[:0]
	t.next = t.next[:0]
	t.head, t.tail = -1, -1
	if t.index != nil {
		clear(t.index)
	}
}

func (t *lru) unlink(s int32) {
	p, n := t.prev[s], t.next[s]
	if p >= 0 {
		t.next[p] = n
	} else {
		t.head = n
	}
	if n >= 0 {
		t.prev[n] = p
	} else {
		t.tail = p
	}
}

func (t *lru) pushFront(s int32) {
	t.prev[s] = -1
	t.next[s] = t.head
	if t.head >= 0 {
		t.prev[t.head] = s
	}
	t.head = s
	if t.tail < 0 {
		t.tail = s
	}
}

// touch marks slot s as most recently used.
func (t *lru) touch(s int32) {
	if t.head == s {
		return
	}
	t.unlink(s)
	t.pushFront(s)
}

// insert stores v in a free slot or, when full, in the least recently used
// one, and returns the slot.
func (t *lru) insert(v string) int32 {
	var s int32
	if len(t.vals) < t.max {
		s = int32(len(t.vals))
		t.vals = append(t.vals, v)
		t.prev = append(t.prev, -1)
		t.next = append(t.next, -1)
	} else {
		s = t.tail
		t.unlink(s)
		if t.index != nil {
			delete(t.index, t.vals[s])
		}
		t.vals[s] = v
	}
	t.pushFront(s)
	if t.index != nil {
		t.index[v] = s
	}
	return s
}

// rank returns how many slots were used more recently than slot s (a
// walk of the recency list: for tables whose references are mostly
// recent, a rank is a smaller number to send than a slot).
func (t *lru) rank(s int32) int {
	r := 0
	for i := t.head; i != s; i = t.next[i] {
		r++
	}
	return r
}

// rankBelow returns slot s's rank if it is below max, else -1.
func (t *lru) rankBelow(s int32, max int) int {
	r := 0
	for i := t.head; i >= 0 && r < max; i = t.next[i] {
		if i == s {
			return r
		}
		r++
	}
	return -1
}

// atRank returns the slot of rank r, if the table holds that many.
func (t *lru) atRank(r uint64) (int32, bool) {
	i := t.head
	for ; i >= 0 && r > 0; r-- {
		i = t.next[i]
	}
	return i, i >= 0
}

// lookup returns the slot holding v (encoder side).
func (t *lru) lookup(v []byte) (int32, bool) {
	s, ok := t.index[string(v)]
	return s, ok
}

// get returns the value in slot s and touches it (decoder side).
func (t *lru) get(s uint64) (string, bool) {
	if s >= uint64(len(t.vals)) {
		return "", false
	}
	t.touch(int32(s))
	return t.vals[s], true
}

// ring is a FIFO of recent ids, mirrored like lru.
type ring struct {
	vals  []string
	pos   int
	index map[string]int // encoder only
}

func (r *ring) reset() {
	r.vals = r.vals[:0]
	r.pos = 0
	if r.index != nil {
		clear(r.index)
	}
}

// last returns the slot of the most recent id (the ring must not be empty).
func (r *ring) last() int {
	if len(r.vals) < ringSize {
		return len(r.vals) - 1
	}
	return (r.pos + ringSize - 1) % ringSize
}

func (r *ring) push(v string) {
	if len(r.vals) < ringSize {
		if r.index != nil {
			r.index[v] = len(r.vals)
		}
		r.vals = append(r.vals, v)
		return
	}
	if r.index != nil {
		if r.index[r.vals[r.pos]] == r.pos {
			delete(r.index, r.vals[r.pos])
		}
		r.index[v] = r.pos
	}
	r.vals[r.pos] = v
	r.pos = (r.pos + 1) % ringSize
}

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
	// tlast[slot] is the bare-JID slot of the root 'to' of template slot's
	// last copy (or of its stanza), -1 if none in JID form; tlastRes
	// whether it had a resource (see predict).
	tlast    [templateSlots]int32
	tlastRes [templateSlots]bool
	// noted is set by noteTo: the root 'to' just written was a JID.
	// learn is false while a template's copy is written: its 'to' teaches
	// succ through the template (copied), not as the stream's next.
	noted, learn bool
	// tnext is the bare-JID slot of the last root 'to' written in JID form,
	// or -1, and tres whether it had a resource; succ[s] the slot of the
	// root 'to' that followed slot s last time (both with a resource or
	// both without), or -1. A server fans a presence or a PEP event out to
	// a roster in the same order every time (and, the first time, usually
	// in the order the contacts were first seen), so predict names the
	// recipient of a template's next copy from the template's last one
	// (tlast), or from tnext.
	tnext int32
	tres  bool
	succ  []int32
	succR []int32 // the same for root 'to's with a resource
	// lastRes[s] is the resource slot of the last JID written with bare
	// slot s and a resource, or -1.
	lastRes []int32
	// lastTime is the last timestamp written (unix seconds): the next one
	// crosses as the difference.
	lastTime int64
	// log, when set, is where ids entering the ring are logged; echo the
	// other direction's log, and echoes what this stream echoed from it
	// (echo.go). The logs outlive epochs; echoes starts over.
	log, echo *IDLog
	echoes    echoState
}

func (t *tables) storeKey(key string) int {
	if len(t.tnames) < templateSlots {
		t.tnames = append(t.tnames, key)
		t.tkeys[key] = len(t.tnames) - 1
		return len(t.tnames) - 1
	}
	if t.tkeys[t.tnames[t.tpos]] == t.tpos {
		delete(t.tkeys, t.tnames[t.tpos])
	}
	slot := t.tpos
	t.tnames[t.tpos] = key
	t.tkeys[key] = t.tpos
	t.tpos = (t.tpos + 1) % templateSlots
	return slot
}

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

func (t *tables) storeHalves(pre, suf []byte) int {
	if len(t.tpre) < templateSlots {
		t.tpre = append(t.tpre, pre)
		t.tsuf = append(t.tsuf, suf)
		return len(t.tpre) - 1
	}
	slot := t.tpos
	t.tpre[t.tpos], t.tsuf[t.tpos] = pre, suf
	t.tpos = (t.tpos + 1) % templateSlots
	return slot
}

// stored records, for template slot just stored, the root 'to' its stanza
// was written with (tnext and tres once the stanza is written): the
// first copy of a fan-out is predicted from it.
func (t *tables) stored(slot int) {
	t.tlast[slot], t.tlastRes[slot] = t.tnext, t.tres
}

// predict returns the bare slot and the resource slot (-1: none) of the
// predicted 'to' of the next copy of template slot: the root 'to' that
// followed its last one (succ, or succR when that had a resource), else
// the bare slot after it, with that bare JID's last resource when its last
// one had a resource; a template with no last 'to' in JID form follows the
// last root 'to' of the stream (tnext, tres) instead. ok is false when
// there is no prediction (no last 'to', or no last resource).
func (t *tables) predict(slot int) (bare, res int32, ok bool) {
	w, wres := t.tlast[slot], t.tlastRes[slot]
	if w < 0 {
		w, wres = t.tnext, t.tres
	}
	if w < 0 {
		return 0, 0, false
	}
	succ := t.succ
	if wres {
		succ = t.succR
	}
	bare = w + 1
	if s := succ[w]; s >= 0 {
		bare = s
	}
	if bare >= bareSlots {
		return 0, 0, false
	}
	if !wres {
		return bare, -1, true
	}
	if r := t.lastRes[bare]; r >= 0 {
		return bare, r, true
	}
	return 0, 0, false
}

// copied records that a copy of template slot went to the root 'to' of
// bare slot bare (hasRes: with a resource): the template's last 'to'
// followed by this one teaches succ (or succR) the order of its fan-out.
func (t *tables) copied(slot int, bare int32, hasRes bool) {
	if w := t.tlast[slot]; w >= 0 && w != bare && t.tlastRes[slot] == hasRes {
		if hasRes {
			t.succR[w] = bare
		} else {
			t.succ[w] = bare
		}
	}
	t.tlast[slot], t.tlastRes[slot] = bare, hasRes
}

func newTables(enc bool) *tables {
	t := &tables{
		values:  newLRU(valueSlots, enc),
		bare:    newLRU(bareSlots, enc),
		res:     newLRU(resourceSlots, enc),
		names:   newLRU(nameSlots, enc),
		shapes:  newLRU(shapeSlots, enc),
		pairs:   newLRU(pairSlots, enc),
		tnext:   -1,
		learn:   true,
		succ:    make([]int32, bareSlots),
		succR:   make([]int32, bareSlots),
		lastRes: make([]int32, bareSlots),
	}
	for i := range t.succ {
		t.succ[i], t.succR[i], t.lastRes[i] = -1, -1, -1
	}
	for i := range t.tlast {
		t.tlast[i] = -1
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
	t.tnext, t.tres = -1, false
	for i := range t.tlast {
		t.tlast[i], t.tlastRes[i] = -1, false
	}
	t.lastTime = 0
	t.echoes = echoState{}
	for i := range t.succ {
		t.succ[i], t.succR[i], t.lastRes[i] = -1, -1, -1
	}
}

// noteTo records the bare slot of a root 'to' JID and whether it had a
// resource (see tnext).
func (t *tables) noteTo(slot int32, hasRes bool) {
	t.noted = true
	if t.learn && t.tnext >= 0 && slot >= 0 && slot != t.tnext && t.tres == hasRes {
		if hasRes {
			t.succR[t.tnext] = slot
		} else {
			t.succ[t.tnext] = slot
		}
	}
	t.tnext, t.tres = slot, hasRes
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
