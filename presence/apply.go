package presence

import (
	"sort"
	"strings"
)

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
	p := payload(n)
	bare, res := from.bare(), from.res
	deliver := func(f, t, ty, inner string) {
		m.c.Expanded++
		m.emit(ToLocal, "presence", f, t, ty, id, inner)
	}
	switch {
	case mx.attr("confirm") == "1":
		if c := m.in.c[bare]; c != nil {
			for r, e := range c.res {
				if res == "" || r == res {
					e.confirmed = m.now
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
			for r := range e.rcpt {
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
				delete(e.rcpt, r)
			}
			if len(e.rcpt) == 0 {
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
		e = &entry{rcpt: map[string]bool{}, payload: p}
		m.in.put(bare, res, e)
	}
	e.confirmed = m.now
	e.id = id
	switch {
	case mx.attr("reset") == "1":
		changed := e.payload != p
		old := map[string]bool{}
		for r := range e.rcpt {
			old[r] = true
			if domainOf(r) == d {
				delete(e.rcpt, r)
			}
		}
		e.payload = p
		for _, r := range add {
			if changed || !old[r] {
				deliver(from.full(), r, "", p)
			}
			e.rcpt[r] = true
		}
	case mx.attr("keep") == "1":
		e.payload = p
		for _, r := range add {
			e.rcpt[r] = true
			deliver(from.full(), r, "", p)
		}
	default:
		e.payload = p
		for _, r := range del {
			delete(e.rcpt, r)
		}
		for _, r := range add {
			e.rcpt[r] = true
		}
		var targets []string
		for r := range e.rcpt {
			if domainOf(r) == d {
				targets = append(targets, r)
			}
		}
		sort.Strings(targets)
		for _, r := range targets {
			deliver(from.full(), r, "", p)
		}
	}
}

// dropContact removes the in entries of bare (all resources when res is
// "") and synthesizes unavailable from each to its recipients.
func (m *Mirror) dropContact(bare, res string) {
	c := m.in.c[bare]
	if c == nil {
		return
	}
	for _, r := range sortedKeys(c.res) {
		if res != "" && r != res {
			continue
		}
		e := c.res[r]
		for _, to := range sortedKeys(e.rcpt) {
			m.c.Synthesized++
			m.emit(ToLocal, "presence", bare+"/"+r, to, "unavailable", "", "")
		}
		m.in.del(bare, r)
	}
}
