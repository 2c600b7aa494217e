package presence

import (
	"sort"
	"strings"
	"time"
)

// The tables (package doc, # Tables): entries by contact bare JID and
// resource, revocation of a recipient, and the time-out.
//
// Memory: a table holds up to Config.MaxEntries entries (100,000 by default)
// of a few hundred bytes of presence each, so an entry keeps no parsed tree
// and no map. The payload's children (the caps element, show, priority,
// common status texts) and the recipients' bare JIDs are shared strings,
// held once per mirror by an interner with reference counts; an entry keeps
// their ids in one small slice. Times are kept as Unix nanoseconds.

// strID names a string held by an interner.
type strID uint32

// interner holds each distinct string once, with the number of references
// the tables hold to it; a string no entry refers to is released.
type interner struct {
	ids  map[string]strID
	strs []string
	refs []uint32
	free []strID
}

func newInterner() *interner { return &interner{ids: map[string]strID{}} }

// ref returns the id of s, taking one reference.
func (in *interner) ref(s string) strID {
	if id, ok := in.ids[s]; ok {
		in.refs[id]++
		return id
	}
	s = strings.Clone(s) // not a window into a larger buffer
	var id strID
	if n := len(in.free); n > 0 {
		id = in.free[n-1]
		in.free = in.free[:n-1]
		in.strs[id], in.refs[id] = s, 1
	} else {
		id = strID(len(in.strs))
		in.strs = append(in.strs, s)
		in.refs = append(in.refs, 1)
	}
	in.ids[s] = id
	return id
}

// unref drops one reference to id.
func (in *interner) unref(id strID) {
	if in.refs[id]--; in.refs[id] == 0 {
		delete(in.ids, in.strs[id])
		in.strs[id] = ""
		in.free = append(in.free, id)
	}
}

func (in *interner) lookup(s string) (strID, bool) {
	id, ok := in.ids[s]
	return id, ok
}

func (in *interner) str(id strID) string { return in.strs[id] }

// stamp is a time in 8 bytes: Unix nanoseconds, 0 for none.
type stamp int64

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixNano())
}

func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

// entry is the mirror's state of one contact resource.
type entry struct {
	res string // resource
	id  string // id of the stanza that carried the payload, given to its recipients as the contact's server did
	// ids holds the payload's children (canonical, sorted; no delay, no
	// mirror element), npl of them, then the bare JIDs the contact's
	// server delivered that payload to, in no order.
	ids       []strID
	npl       int32
	confirmed stamp // when the contact's side last confirmed it
}

func (e *entry) rcptIDs() []strID { return e.ids[e.npl:] }

// entryOverhead is what an entry counts towards Config.MaxBytes besides its
// strings: about what its structures take in memory.
const entryOverhead = 128

// contact groups the entries of one bare JID.
type contact struct {
	ents      []*entry        // by resource, in no order
	refreshed stamp           // in table: last refresh probe sent to the peer
	probed    stamp           // out table: last probe from the peer (a confirmation is owed)
	confirmed map[string]bool // out table: resources confirmed to the peer since probed
}

// entry returns the entry of resource res, or nil.
func (c *contact) entry(res string) *entry {
	for _, e := range c.ents {
		if e.res == res {
			return e
		}
	}
	return nil
}

// resources returns the contact's resources, sorted.
func (c *contact) resources() []string {
	l := make([]string, len(c.ents))
	for i, e := range c.ents {
		l[i] = e.res
	}
	sort.Strings(l)
	return l
}

// table is one of the mirror's two tables.
type table struct {
	c     map[string]*contact // by bare JID
	n     int                 // entries
	bytes int64               // what the entries count towards Config.MaxBytes (see size)
	s     *interner           // shared by the mirror's two tables
}

func newTable(s *interner) table { return table{c: map[string]*contact{}, s: s} }

func (t *table) get(bare, res string) *entry {
	if c := t.c[bare]; c != nil {
		return c.entry(res)
	}
	return nil
}

// size is what an entry of contact bare counts towards Config.MaxBytes: its
// strings (as if none were shared) and entryOverhead. It depends only on
// the entry's content, so the peer's table that mirrors this one counts the
// same.
func (t *table) size(bare string, e *entry) int64 {
	n := int64(entryOverhead + len(bare) + len(e.res) + len(e.id))
	for _, id := range e.ids {
		n += int64(len(t.s.str(id)))
	}
	return n
}

// entrySize is size for an entry not built yet.
func entrySize(bare, res, id string, kids []string, rcpts []string) int64 {
	n := int64(entryOverhead + len(bare) + len(res) + len(id))
	for _, s := range kids {
		n += int64(len(s))
	}
	for _, s := range rcpts {
		n += int64(len(s))
	}
	return n
}

// create stores a new entry for bare/res (replacing any) and returns it.
func (t *table) create(bare, res string, kids []string, id string, rcpts []string, confirmed time.Time) *entry {
	t.del(bare, res)
	c := t.c[bare]
	if c == nil {
		c = &contact{}
		t.c[strings.Clone(bare)] = c
	}
	e := &entry{res: strings.Clone(res), id: strings.Clone(id), npl: int32(len(kids)), confirmed: stampOf(confirmed)}
	e.ids = make([]strID, 0, len(kids)+len(rcpts))
	for _, k := range kids {
		e.ids = append(e.ids, t.s.ref(k))
	}
	for _, r := range rcpts {
		if !t.hasRcpt(e, r) {
			e.ids = append(e.ids, t.s.ref(r))
		}
	}
	c.ents = append(c.ents, e)
	t.n++
	t.bytes += t.size(bare, e)
	return e
}

func (t *table) del(bare, res string) {
	c := t.c[bare]
	if c == nil {
		return
	}
	for i, e := range c.ents {
		if e.res != res {
			continue
		}
		t.bytes -= t.size(bare, e)
		for _, id := range e.ids {
			t.s.unref(id)
		}
		c.ents[i] = c.ents[len(c.ents)-1]
		c.ents[len(c.ents)-1] = nil
		c.ents = c.ents[:len(c.ents)-1]
		if len(c.ents) == 0 {
			c.ents = nil
		}
		t.n--
		break
	}
	if len(c.ents) == 0 && c.refreshed == 0 && c.probed == 0 {
		delete(t.c, bare)
	}
}

// payload returns the entry's payload: its children, concatenated.
func (t *table) payload(e *entry) string {
	switch e.npl {
	case 0:
		return ""
	case 1:
		return t.s.str(e.ids[0])
	}
	var b strings.Builder
	for _, id := range e.ids[:e.npl] {
		b.WriteString(t.s.str(id))
	}
	return b.String()
}

// samePayload reports whether e's payload has the children kids.
func (t *table) samePayload(e *entry, kids []string) bool {
	if int(e.npl) != len(kids) {
		return false
	}
	for i, k := range kids {
		if id, ok := t.s.lookup(k); !ok || id != e.ids[i] {
			return false
		}
	}
	return true
}

// setPayload replaces e's payload (and the id that carried it).
func (t *table) setPayload(bare string, e *entry, kids []string, id string) {
	t.bytes -= t.size(bare, e)
	ids := make([]strID, 0, len(kids)+len(e.ids)-int(e.npl))
	for _, k := range kids {
		ids = append(ids, t.s.ref(k))
	}
	for _, old := range e.ids[:e.npl] {
		t.s.unref(old)
	}
	ids = append(ids, e.rcptIDs()...)
	e.ids, e.npl = ids, int32(len(kids))
	e.id = strings.Clone(id)
	t.bytes += t.size(bare, e)
}

// setID sets the id of the stanza that carried e's payload.
func (t *table) setID(bare string, e *entry, id string) {
	t.bytes += int64(len(id) - len(e.id))
	e.id = strings.Clone(id)
}

// hasRcpt reports whether r is a recipient of e.
func (t *table) hasRcpt(e *entry, r string) bool {
	id, ok := t.s.lookup(r)
	if !ok {
		return false
	}
	for _, x := range e.rcptIDs() {
		if x == id {
			return true
		}
	}
	return false
}

// addRcpt adds recipient r to e.
func (t *table) addRcpt(e *entry, r string) {
	if t.hasRcpt(e, r) {
		return
	}
	e.ids = append(e.ids, t.s.ref(r))
	t.bytes += int64(len(r))
}

// delRcpt removes recipient r from e and reports whether it was one.
func (t *table) delRcpt(e *entry, r string) bool {
	id, ok := t.s.lookup(r)
	if !ok {
		return false
	}
	for i := int(e.npl); i < len(e.ids); i++ {
		if e.ids[i] == id {
			e.ids[i] = e.ids[len(e.ids)-1]
			e.ids = e.ids[:len(e.ids)-1]
			t.s.unref(id)
			t.bytes -= int64(len(r))
			return true
		}
	}
	return false
}

// nrcpt is the number of e's recipients.
func (t *table) nrcpt(e *entry) int { return len(e.ids) - int(e.npl) }

// rcpts returns e's recipients, sorted.
func (t *table) rcpts(e *entry) []string {
	l := make([]string, 0, t.nrcpt(e))
	for _, id := range e.rcptIDs() {
		l = append(l, t.s.str(id))
	}
	sort.Strings(l)
	return l
}

// rcptSet returns e's recipients as a set.
func (t *table) rcptSet(e *entry) map[string]bool {
	s := make(map[string]bool, t.nrcpt(e))
	for _, id := range e.rcptIDs() {
		s[t.s.str(id)] = true
	}
	return s
}

// keys returns (bare, resource) pairs in order.
func (t *table) keys() [][2]string {
	out := make([][2]string, 0, t.n)
	for b, c := range t.c {
		for _, e := range c.ents {
			out = append(out, [2]string{b, e.res})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

func key(bare, res string) string {
	if res == "" {
		return bare
	}
	return bare + "/" + res
}

// revoke removes recipient from every entry of contact in t, and from
// fan-outs being collected. An entry left without recipients goes (on both
// gateways, which both see the revocation).
func (m *Mirror) revoke(t *table, contactBare, recipient string) {
	if c := t.c[contactBare]; c != nil {
		for _, r := range c.resources() {
			if e := c.entry(r); t.delRcpt(e, recipient) {
				m.c.Revoked++
				m.dirty = true
				if t.nrcpt(e) == 0 {
					t.del(contactBare, r)
				}
			}
		}
	}
	if t == &m.out {
		for _, p := range m.pend {
			if p.bare == contactBare {
				delete(p.to, recipient)
			}
		}
	}
}

// expire removes entries not confirmed within the time-out: in the in table
// unavailable is synthesized to local recipients; in the out table the
// removal crosses as an unavailable mirror stanza.
func (m *Mirror) expire(now time.Time) {
	limit := now.Add(-m.cfg.Timeout)
	// Contacts without entries are kept only while their refresh or probe
	// timestamps matter.
	for _, t := range []*table{&m.in, &m.out} {
		for b, c := range t.c {
			if now.Sub(c.probed.time()) > probeAnswerWait {
				c.probed, c.confirmed = 0, nil
			}
			if now.Sub(c.refreshed.time()) >= m.cfg.Refresh {
				c.refreshed = 0
			}
			if len(c.ents) == 0 && c.refreshed == 0 && c.probed == 0 {
				delete(t.c, b)
			}
		}
	}
	for _, k := range m.in.keys() {
		if e := m.in.get(k[0], k[1]); e != nil && e.confirmed.time().Before(limit) {
			m.c.Expired++
			m.dirty = true
			m.dropContact(k[0], k[1])
		}
	}
	for _, k := range m.out.keys() {
		e := m.out.get(k[0], k[1])
		if e == nil || !e.confirmed.time().Before(limit) {
			continue
		}
		m.c.Expired++
		m.dirty = true
		rcpt := m.out.rcptSet(e)
		m.out.del(k[0], k[1])
		m.sendMirror(key(k[0], k[1]), "unavailable", "", "", rcpt, nil, nil, false)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
