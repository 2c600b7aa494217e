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
