package presence

import "time"

// Probes (package doc, # Events): local probes answered from the in table,
// probe answers from local contacts that only confirm, and the re-probe.

// probeAnswerWait is how long after a probe from the peer the local server's
// answers count as answers to it: unchanged ones cross as a confirmation
// only. Servers answer within milliseconds.
const probeAnswerWait = time.Minute

// localProbe answers a probe from a local user for a remote contact from
// the in table, for recipients the contact's server delivered to.
func (m *Mirror) localProbe(st Stanza, from, to addr) bool {
	if to.res != "" || to.local == "" {
		return false
	}
	c := m.in.c[to.bare()]
	if c == nil {
		m.c.ProbesForwarded++
		return false
	}
	prober := from.bare()
	answered := false
	var oldest time.Time
	for _, r := range c.resources() {
		e := c.entry(r)
		if !m.in.hasRcpt(e, prober) {
			continue
		}
		p := m.in.payload(e)
		confirmed := e.confirmed.time()
		if !m.up {
			p += delayXML(to.domain, confirmed)
		}
		m.emit(ToLocal, "presence", to.bare()+"/"+r, st.From, "", e.id, p)
		answered = true
		if oldest.IsZero() || confirmed.Before(oldest) {
			oldest = confirmed
		}
	}
	if !answered {
		m.c.ProbesForwarded++
		return false
	}
	m.c.ProbesAnswered++
	if m.up && m.now.Sub(oldest) >= m.cfg.Refresh && m.now.Sub(c.refreshed.time()) >= m.cfg.Refresh {
		c.refreshed = stampOf(m.now)
		m.c.RefreshProbes++
		m.actions = append(m.actions, Action{Dest: ToLink, Stanza: st})
	}
	return true
}

func delayXML(from string, t time.Time) string {
	return "<delay xmlns='" + nsDelay + "' from='" + from + "' stamp='" + t.UTC().Format("2006-01-02T15:04:05Z") + "'/>"
}

// probeAnswer takes presence from a local contact to a remote full JID.
// Directed presence passes through, except an unchanged answer to a probe
// from the peer (a server answers a probe to the prober's full JID): when the
// prober's bare JID already holds that payload, the answer is a duplicate and
// only a confirmation crosses.
func (m *Mirror) probeAnswer(from, to addr, typ string, n *node) bool {
	if typ != "" || from.res == "" {
		return false
	}
	c := m.probedContact(from.bare())
	if c == nil {
		return false
	}
	e := c.entry(from.res)
	if e == nil || !m.out.hasRcpt(e, to.bare()) || !m.out.samePayload(e, payloadKids(n)) {
		return false
	}
	m.c.Duplicates++
	e.confirmed = stampOf(m.now)
	m.confirmProbe(from)
	return true
}

// probedContact returns the out table's contact bare when the peer probed
// it within probeAnswerWait, else nil.
func (m *Mirror) probedContact(bare string) *contact {
	c := m.out.c[bare]
	if c == nil || c.probed == 0 || m.now.Sub(c.probed.time()) > probeAnswerWait {
		return nil
	}
	return c
}

// confirmProbe sends a confirmation for contact resource from when the peer
// probed its contact recently and that resource is not yet confirmed.
func (m *Mirror) confirmProbe(from addr) {
	c := m.probedContact(from.bare())
	if c == nil || c.confirmed[from.res] {
		return
	}
	if c.confirmed == nil {
		c.confirmed = map[string]bool{}
	}
	c.confirmed[from.res] = true
	m.c.Confirms++
	m.emit(ToLink, "presence", from.full(), m.cfg.Peer, "", "", "<m xmlns='"+NS+"' confirm='1'/>")
}

// reprobe probes each local contact of the out table, from one of its
// recipients, at its local server: unchanged answers confirm the entries
// without crossing the link, changes cross as usual.
func (m *Mirror) reprobe() {
	for _, b := range sortedKeys(m.out.c) {
		c := m.out.c[b]
		var from string
		for _, e := range c.ents {
			for _, id := range e.rcptIDs() {
				if r := m.out.s.str(id); from == "" || r < from {
					from = r
				}
			}
		}
		if from == "" {
			continue
		}
		m.c.Reprobes++
		m.emit(ToLocal, "presence", from, b, "probe", "", "")
	}
}
