package presence

import (
	"sort"
	"time"
)

// The tables (package doc, # Tables): entries by contact bare JID and
// resource, revocation of a recipient, and the time-out.

// entry is the mirror's state of one contact resource.
type entry struct {
	payload   string          // canonical children (no delay, no mirror element)
	id        string          // id of the stanza that carried payload, given to its recipients as the contact's server did
	rcpt      map[string]bool // bare JIDs the contact's server delivered payload to
	confirmed time.Time       // when the contact's side last confirmed it
}

// contact groups the entries of one bare JID.
type contact struct {
	res       map[string]*entry // by resource
	refreshed time.Time         // in table: last refresh probe sent to the peer
	probed    time.Time         // out table: last probe from the peer (a confirmation is owed)
	confirmed map[string]bool   // out table: resources confirmed to the peer since probed
}

type table struct {
	c map[string]*contact // by bare JID
	n int                 // entries
}

func newTable() table { return table{c: map[string]*contact{}} }

func (t *table) get(bare, res string) *entry {
	if c := t.c[bare]; c != nil {
		return c.res[res]
	}
	return nil
}

func (t *table) put(bare, res string, e *entry) {
	c := t.c[bare]
	if c == nil {
		c = &contact{res: map[string]*entry{}}
		t.c[bare] = c
	}
	if c.res[res] == nil {
		t.n++
	}
	c.res[res] = e
}

func (t *table) del(bare, res string) {
	c := t.c[bare]
	if c == nil || c.res[res] == nil {
		return
	}
	delete(c.res, res)
	t.n--
	if len(c.res) == 0 && c.refreshed.IsZero() && c.probed.IsZero() {
		delete(t.c, bare)
	}
}

// keys returns (bare, resource) pairs in order.
func (t *table) keys() [][2]string {
	var out [][2]string
	for b, c := range t.c {
		for r := range c.res {
			out = append(out, [2]string{b, r})
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
// fan-outs being collected.
func (m *Mirror) revoke(t *table, contactBare, recipient string) {
	if c := t.c[contactBare]; c != nil {
		for _, e := range c.res {
			if e.rcpt[recipient] {
				delete(e.rcpt, recipient)
				m.c.Revoked++
				m.dirty = true
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
			if now.Sub(c.probed) > probeAnswerWait {
				c.probed, c.confirmed = time.Time{}, nil
			}
			if now.Sub(c.refreshed) >= m.cfg.Refresh {
				c.refreshed = time.Time{}
			}
			if len(c.res) == 0 && c.refreshed.IsZero() && c.probed.IsZero() {
				delete(t.c, b)
			}
		}
	}
	for _, k := range m.in.keys() {
		if e := m.in.get(k[0], k[1]); e != nil && e.confirmed.Before(limit) {
			m.c.Expired++
			m.dirty = true
			m.dropContact(k[0], k[1])
		}
	}
	for _, k := range m.out.keys() {
		e := m.out.get(k[0], k[1])
		if e == nil || !e.confirmed.Before(limit) {
			continue
		}
		m.c.Expired++
		m.dirty = true
		m.out.del(k[0], k[1])
		m.sendMirror(key(k[0], k[1]), "unavailable", "", "", e.rcpt, nil, nil, false)
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
