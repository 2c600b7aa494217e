package presence

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sort"
	"strings"
	"time"
)

// MaxCaps bounds the entity-capabilities cache; the oldest entry goes first.
const MaxCaps = 4096

// capsPendingTTL is how long a forwarded disco#info query waits for its
// result to be verified and cached.
const capsPendingTTL = 5 * time.Minute

type capsPending struct {
	node string // node#ver asked for
	at   time.Time
}

// capsCache maps a XEP-0115 node#ver to the disco#info it stands for.
type capsCache struct {
	q     map[string]string // node#ver -> canonical inner XML of the <query/>
	order []string          // insertion order, for eviction
	pend  map[string]capsPending
}

func newCapsCache() *capsCache {
	return &capsCache{q: map[string]string{}, pend: map[string]capsPending{}}
}

func (c *capsCache) put(node, inner string) {
	if _, ok := c.q[node]; !ok {
		c.order = append(c.order, node)
	}
	c.q[node] = inner
	for len(c.order) > MaxCaps {
		delete(c.q, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *capsCache) expire(now time.Time) {
	for k, p := range c.pend {
		if now.Sub(p.at) > capsPendingTTL {
			delete(c.pend, k)
		}
	}
}

func pendKey(responder, requester, id string) string {
	return responder + "\x00" + requester + "\x00" + id
}

// discoNode returns the disco#info <query/> of an iq and its node.
func discoNode(n *node) (*node, string) {
	q := n.child(nsDisco, "query")
	if q == nil {
		return nil, ""
	}
	return q, q.attr("node")
}

// localIQ answers disco#info queries for known caps from the cache, and
// watches results to fill it.
func (m *Mirror) localIQ(st Stanza, n *node) bool {
	if st.Type == "get" {
		q, nd := discoNode(n)
		if q == nil || !strings.Contains(nd, "#") {
			return false
		}
		if inner, ok := m.caps.q[nd]; ok && m.advertises(st.To, st.From, nd) {
			m.c.CapsHits++
			var b strings.Builder
			b.WriteString("<query xmlns='" + nsDisco + "' node='")
			escape(&b, nd, true)
			b.WriteString("'>" + inner + "</query>")
			m.emit(ToLocal, "iq", st.To, st.From, "result", st.ID, b.String())
			return true
		}
		m.c.CapsMisses++
	}
	m.capsIQ(st, n, false)
	return false
}

// advertises reports whether the in table holds presence from the full JID
// contact, delivered to requester, advertising caps node#ver: only then is a
// cached answer given (it must not reveal more than the presence did).
func (m *Mirror) advertises(contact, requester, nodeVer string) bool {
	c, ok1 := parseAddr(contact)
	r, ok2 := parseAddr(requester)
	if !ok1 || !ok2 || c.res == "" {
		return false
	}
	e := m.in.get(c.bare(), c.res)
	if e == nil || !e.rcpt[r.bare()] {
		return false
	}
	p, err := parseElement([]byte("<presence>" + e.payload + "</presence>"))
	if err != nil {
		return false
	}
	cx := p.child(nsCaps, "c")
	return cx != nil && cx.attr("node")+"#"+cx.attr("ver") == nodeVer
}

// capsIQ records disco#info queries with a caps node and verifies and caches
// their results.
func (m *Mirror) capsIQ(st Stanza, n *node, fromPeer bool) {
	switch st.Type {
	case "get":
		if q, nd := discoNode(n); q != nil && strings.Contains(nd, "#") {
			m.caps.pend[pendKey(st.To, st.From, st.ID)] = capsPending{node: nd, at: m.now}
		}
	case "result":
		k := pendKey(st.From, st.To, st.ID)
		p, ok := m.caps.pend[k]
		if !ok {
			return
		}
		delete(m.caps.pend, k)
		q, _ := discoNode(n)
		if q == nil {
			return
		}
		ver := p.node[strings.LastIndexByte(p.node, '#')+1:]
		if !VerifyCaps(q, ver) {
			m.c.CapsBadHash++
			return
		}
		var b strings.Builder
		for i := range q.kids {
			if q.kids[i].local != "" {
				writeNode(&b, &q.kids[i], nsDisco)
			}
		}
		m.caps.put(p.node, b.String())
		m.c.CapsCached++
		m.dirty = true
	}
}

// VerifyCaps reports whether ver is the XEP-0115 verification string of the
// disco#info query q, hashed with SHA-1 or SHA-256.
func VerifyCaps(q *node, ver string) bool {
	s := capsString(q)
	for _, h := range []func() hash.Hash{sha1.New, sha256.New} {
		x := h()
		x.Write([]byte(s))
		if base64.StdEncoding.EncodeToString(x.Sum(nil)) == ver {
			return true
		}
	}
	return false
}

// VerifyCapsXML is VerifyCaps for a serialized <query/> element.
func VerifyCapsXML(query []byte, ver string) bool {
	q, err := parseElement(query)
	if err != nil {
		return false
	}
	return VerifyCaps(&q, ver)
}

// capsString builds the XEP-0115 §5.1 verification string.
func capsString(q *node) string {
	var ids, feats []string
	type form struct {
		typ    string
		fields [][2]string // var, "var<value<..."
	}
	var forms []form
	for i := range q.kids {
		k := &q.kids[i]
		switch {
		case k.local == "identity" && k.space == nsDisco:
			ids = append(ids, k.attr("category")+"/"+k.attr("type")+"/"+langOf(k)+"/"+k.attr("name"))
		case k.local == "feature" && k.space == nsDisco:
			feats = append(feats, k.attr("var"))
		case k.local == "x" && k.space == nsData:
			var f form
			for j := range k.kids {
				fl := &k.kids[j]
				if fl.local != "field" {
					continue
				}
				var vals []string
				for v := range fl.kids {
					if fl.kids[v].local == "value" {
						vals = append(vals, fl.kids[v].textOf())
					}
				}
				if fl.attr("var") == "FORM_TYPE" {
					if len(vals) > 0 {
						f.typ = vals[0]
					}
					continue
				}
				sort.Strings(vals)
				s := fl.attr("var") + "<"
				for _, v := range vals {
					s += v + "<"
				}
				f.fields = append(f.fields, [2]string{fl.attr("var"), s})
			}
			sort.Slice(f.fields, func(i, j int) bool { return f.fields[i][0] < f.fields[j][0] })
			forms = append(forms, f)
		}
	}
	sort.Strings(ids)
	sort.Strings(feats)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	var b strings.Builder
	for _, s := range ids {
		b.WriteString(s + "<")
	}
	for _, s := range feats {
		b.WriteString(s + "<")
	}
	for _, f := range forms {
		b.WriteString(f.typ + "<")
		for _, s := range f.fields {
			b.WriteString(s[1])
		}
	}
	return b.String()
}

func langOf(n *node) string {
	for _, a := range n.attrs {
		if a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}
