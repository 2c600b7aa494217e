package presence

import (
	"sort"
	"strings"
	"time"
)

// Fan-out (package doc, # Events and # Wire format): broadcast presence from
// local contacts is collected per contact resource and crosses as one mirror
// stanza per recipient domain.

// pending is a fan-out being collected: one presence from one contact
// resource (or bare JID) to several recipients.
type pending struct {
	bare, res string
	typ       string // "" or "unavailable"
	payload   string
	kids      []string // payload's children
	id        string   // the first id seen among the copies (a server's copies of one broadcast share it)
	to        map[string]bool
	deadline  time.Time
}

// localPresence takes broadcast presence from a local contact to a remote
// bare JID: it is dropped as a duplicate, or joins a fan-out.
func (m *Mirror) localPresence(from, to addr, typ, id string, n *node) bool {
	if to.local == "" || from.local == "" {
		return false // to/from a domain: not mirrored
	}
	if to.res != "" {
		return m.probeAnswer(from, to, typ, n)
	}
	if from.res == "" && typ == "" {
		return false
	}
	kids := payloadKids(n)
	p := strings.Join(kids, "")
	key := from.full()
	rcpt := to.bare()
	if pd := m.pend[key]; pd != nil {
		if pd.typ == typ && pd.payload == p {
			pd.to[rcpt] = true
			if pd.id == "" {
				pd.id = id
			}
			m.c.Absorbed++
			return true
		}
		m.flush(key)
	}
	e := m.out.get(from.bare(), from.res)
	if typ == "" && e != nil && m.out.samePayload(e, kids) && m.out.hasRcpt(e, rcpt) {
		m.c.Duplicates++
		e.confirmed = stampOf(m.now)
		m.confirmProbe(from)
		return true
	}
	if typ == "" && e == nil && m.out.n >= m.cfg.MaxEntries {
		m.c.Full++
		return false
	}
	m.pend[key] = &pending{
		bare: from.bare(), res: from.res, typ: typ, payload: p, kids: kids, id: id,
		to: map[string]bool{rcpt: true}, deadline: m.now.Add(m.cfg.Window),
	}
	m.c.Absorbed++
	return true
}

func (m *Mirror) flushDue(now time.Time) {
	var due []*pending
	for _, p := range m.pend {
		if !now.Before(p.deadline) {
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].deadline.Equal(due[j].deadline) {
			return due[i].deadline.Before(due[j].deadline)
		}
		return due[i].bare+"/"+due[i].res < due[j].bare+"/"+due[j].res
	})
	for _, p := range due {
		m.flush(key(p.bare, p.res))
	}
}

// FlushFrom sends at once the fan-outs being collected for the contact
// whose JID is from (any resource of its bare JID): a stanza of another
// kind from the contact is about to cross, and it must not overtake the
// contact's presence (RFC 6120 §10.1; the link keeps the fan-out ahead of
// it once both are queued).
func (m *Mirror) FlushFrom(now time.Time, from string) {
	m.now = now
	a, ok := parseAddr(from)
	if !ok {
		return
	}
	bare := a.bare()
	for _, p := range m.pend {
		if p.bare == bare {
			p.deadline = now
		}
	}
	m.flushDue(now)
}

// FlushAll sends every fan-out being collected now (at shutdown, in tests).
func (m *Mirror) FlushAll() {
	for k := range m.pend {
		m.pend[k].deadline = m.now
	}
	m.flushDue(m.now)
}

// flush sends the fan-out collected for key as one mirror stanza per
// recipient domain and updates the out table.
func (m *Mirror) flush(k string) {
	p := m.pend[k]
	delete(m.pend, k)
	if p == nil {
		return
	}
	m.dirty = true
	c := m.out.c[p.bare]
	switch {
	case p.typ == "unavailable" && p.res == "":
		// Bare unavailable: every resource is gone.
		if c != nil {
			for _, r := range c.resources() {
				m.out.del(p.bare, r)
			}
		}
		m.sendMirror(k, p.typ, p.id, p.payload, p.to, nil, nil, false)
	case p.typ == "unavailable":
		// The recipients of the unavailable leave the entry; the others
		// (an unavailable after one subscription was revoked) keep it.
		var old map[string]bool
		if e := m.out.get(p.bare, p.res); e != nil {
			old = m.out.rcptSet(e)
			for r := range p.to {
				m.out.delRcpt(e, r)
			}
			if m.out.nrcpt(e) == 0 {
				m.out.del(p.bare, p.res)
			}
		}
		add, del := diff(p.to, old)
		m.sendMirror(k, p.typ, p.id, p.payload, add, del, p.to, false)
	default:
		e := m.out.get(p.bare, p.res)
		if len(p.to) == 0 {
			return // every recipient was revoked while it was collected
		}
		if e != nil && m.out.samePayload(e, p.kids) {
			add, _ := diff(p.to, m.out.rcptSet(e))
			grow := int64(len(p.id) - len(e.id))
			for r := range add {
				grow += int64(len(r))
			}
			if len(add) > 0 && m.overBytes(grow) {
				m.unmirror(k, p, add)
				return
			}
			for _, r := range sortedKeys(add) {
				m.out.addRcpt(e, r)
			}
			e.confirmed = stampOf(m.now)
			if len(add) > 0 {
				m.out.setID(p.bare, e, p.id)
				m.sendMirror(k, "", p.id, p.payload, add, nil, nil, true)
			}
			return
		}
		var old map[string]bool
		grow := entrySize(p.bare, p.res, p.id, p.kids, sortedKeys(p.to))
		if e != nil {
			old = m.out.rcptSet(e)
			grow -= m.out.size(p.bare, e)
		}
		if m.overBytes(grow) {
			m.unmirror(k, p, p.to)
			return
		}
		add, del := diff(p.to, old)
		m.out.create(p.bare, p.res, p.kids, p.id, sortedKeys(p.to), m.now)
		m.sendMirror(k, "", p.id, p.payload, add, del, p.to, false)
	}
}

// overBytes reports whether the out table would exceed Config.MaxBytes
// if it grew by grow.
func (m *Mirror) overBytes(grow int64) bool {
	return grow > 0 && m.out.bytes+grow > m.cfg.MaxBytes
}

// unmirror sends fan-out p to the recipients to as plain presence, one
// each, because its entry would take the out table beyond Config.MaxBytes;
// they leave the entry (the peer, seeing the plain presence, removes them
// from its in entry too).
func (m *Mirror) unmirror(k string, p *pending, to map[string]bool) {
	m.c.FullBytes++
	if e := m.out.get(p.bare, p.res); e != nil {
		for r := range to {
			m.out.delRcpt(e, r)
		}
		if m.out.nrcpt(e) == 0 {
			m.out.del(p.bare, p.res)
		}
	}
	for _, r := range sortedKeys(to) {
		m.emitAction(ToLink, false, "presence", k, r, "", p.id, p.payload)
	}
}

// diff returns the members of now not in old, and of old not in now.
func diff(now, old map[string]bool) (add, del map[string]bool) {
	add, del = map[string]bool{}, map[string]bool{}
	for r := range now {
		if !old[r] {
			add[r] = true
		}
	}
	for r := range old {
		if !now[r] {
			del[r] = true
		}
	}
	return add, del
}

// sendMirror emits one mirror stanza per recipient domain. See the package
// doc for the element.
func (m *Mirror) sendMirror(from, typ, id, payload string, add, del, also map[string]bool, keep bool) {
	doms := map[string]bool{}
	for _, set := range []map[string]bool{add, del, also} {
		for r := range set {
			doms[domainOf(r)] = true
		}
	}
	for _, d := range sortedKeys(doms) {
		var b strings.Builder
		b.WriteString(payload)
		b.WriteString("<m xmlns='" + NS + "'")
		writeList(&b, "add", add, d)
		writeList(&b, "del", del, d)
		if keep {
			b.WriteString(" keep='1'")
		}
		b.WriteString("/>")
		m.c.FanoutSent++
		m.emit(ToLink, "presence", from, d, typ, id, b.String())
	}
}

// writeList writes the localparts of the members of set in domain d as a
// space-separated attribute (localparts cannot contain spaces).
func writeList(b *strings.Builder, name string, set map[string]bool, d string) {
	var l []string
	for r := range set {
		if domainOf(r) == d {
			l = append(l, localOf(r))
		}
	}
	if len(l) == 0 {
		return
	}
	sort.Strings(l)
	b.WriteString(" " + name + "='")
	escape(b, strings.Join(l, " "), true)
	b.WriteString("'")
}
