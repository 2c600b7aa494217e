package presence

import "strings"

// Apply (package doc, # Wire format): mirror stanzas from the peer change the
// in table and expand into one presence per local recipient.

func readList(mx *node, name, d string) []string {
	v := strings.Fields(mx.attr(name))
	for i, l := range v {
		v[i] = l + "@" + d
	}
	return v
}

// applyMirror applies a mirror stanza from the peer to the in table and
// delivers the presence to the local recipients it names.
func (m *Mirror) applyMirror(from, to addr, typ, id string, n, mx *node) {
	m.dirty = true
	d := to.domain
	add, del := readList(mx, "add", d), readList(mx, "del", d)
	kids := payloadKids(n)
	p := strings.Join(kids, "")
	bare, res := from.bare(), from.res
	deliver := func(f, t, ty, inner string) {
		m.c.Expanded++
		m.emit(ToLocal, "presence", f, t, ty, id, inner)
	}
	switch {
	case mx.attr("confirm") == "1":
		if c := m.in.c[bare]; c != nil {
			for _, e := range c.ents {
				if res == "" || e.res == res {
					e.confirmed = stampOf(m.now)
				}
			}
		}
		return
	case typ == "unavailable" && (res == "" || mx.attr("reset") == "1"):
		m.dropContact(bare, res)
		for _, r := range add {
			deliver(from.full(), r, "unavailable", p)
		}
		return
	case typ == "unavailable":
		targets := map[string]bool{}
		e := m.in.get(bare, res)
		if e != nil {
			for _, r := range m.in.rcpts(e) {
				if domainOf(r) == d {
					targets[r] = true
				}
			}
		}
		for _, r := range del {
			delete(targets, r)
		}
		for _, r := range add {
			targets[r] = true
		}
		if e != nil {
			for r := range targets {
				m.in.delRcpt(e, r)
			}
			if m.in.nrcpt(e) == 0 {
				m.in.del(bare, res)
			}
		}
		for _, r := range sortedKeys(targets) {
			deliver(from.full(), r, "unavailable", p)
		}
		return
	case typ != "":
		return
	}
	if res == "" {
		return // available presence from a bare JID is not mirrored
	}
	e := m.in.get(bare, res)
	if e == nil {
		if m.in.n >= m.cfg.MaxEntries {
			m.c.Full++
			for _, r := range add {
				deliver(from.full(), r, "", p)
			}
			return
		}
		e = m.in.create(bare, res, kids, id, nil, m.now)
	}
	e.confirmed = stampOf(m.now)
	m.in.setID(bare, e, id)
	switch {
	case mx.attr("reset") == "1":
		changed := !m.in.samePayload(e, kids)
		old := m.in.rcptSet(e)
		for r := range old {
			if domainOf(r) == d {
				m.in.delRcpt(e, r)
			}
		}
		if changed {
			m.in.setPayload(bare, e, kids, id)
		}
		for _, r := range add {
			if changed || !old[r] {
				deliver(from.full(), r, "", p)
			}
			m.in.addRcpt(e, r)
		}
	case mx.attr("keep") == "1":
		if !m.in.samePayload(e, kids) {
			m.in.setPayload(bare, e, kids, id)
		}
		for _, r := range add {
			m.in.addRcpt(e, r)
			deliver(from.full(), r, "", p)
		}
	default:
		if !m.in.samePayload(e, kids) {
			m.in.setPayload(bare, e, kids, id)
		}
		for _, r := range del {
			m.in.delRcpt(e, r)
		}
		for _, r := range add {
			m.in.addRcpt(e, r)
		}
		for _, r := range m.in.rcpts(e) {
			if domainOf(r) == d {
				deliver(from.full(), r, "", p)
			}
		}
	}
	if m.in.nrcpt(e) == 0 {
		// No recipient in any domain (the peer's stanza for another
		// domain may add some): no entry, as on the peer.
		m.in.del(bare, res)
	} else if m.in.bytes > m.cfg.MaxBytes {
		// The peer's bound is larger than ours: delivered, not kept.
		m.c.FullBytes++
		m.in.del(bare, res)
	}
}

// dropContact removes the in entries of bare (all resources when res is
// "") and synthesizes unavailable from each to its recipients.
func (m *Mirror) dropContact(bare, res string) {
	c := m.in.c[bare]
	if c == nil {
		return
	}
	for _, r := range c.resources() {
		if res != "" && r != res {
			continue
		}
		for _, to := range m.in.rcpts(c.entry(r)) {
			m.c.Synthesized++
			m.emit(ToLocal, "presence", bare+"/"+r, to, "unavailable", "", "")
		}
		m.in.del(bare, r)
	}
}
