package presence

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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

// maxCapsPending bounds the disco#info queries awaiting their result;
// beyond it a query crosses without being recorded (its result is not
// cached).
const maxCapsPending = 4096

type capsPending struct {
	node string // node#ver asked for
	hash string // hash algorithm the responder's presence named for it ("" = none seen)
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
	r, ok := parseAddr(requester)
	if !ok {
		return false
	}
	e := m.entryOf(&m.in, contact)
	if e == nil || !m.in.hasRcpt(e, r.bare()) {
		return false
	}
	_, ok = m.in.capsOf(e, nodeVer)
	return ok
}

// entryOf returns the entry of t for the full JID contact, or nil.
func (m *Mirror) entryOf(t *table, contact string) *entry {
	c, ok := parseAddr(contact)
	if !ok || c.res == "" {
		return nil
	}
	return t.get(c.bare(), c.res)
}

// capsOf returns the hash attribute of the caps <c/> in e's payload when it
// advertises node#ver.
func (t *table) capsOf(e *entry, nodeVer string) (hash string, ok bool) {
	for _, id := range e.ids[:e.npl] {
		k := t.s.str(id)
		if !strings.HasPrefix(k, "<c xmlns='"+nsCaps+"'") {
			continue
		}
		cx, err := parseElement([]byte(k))
		if err != nil || cx.attr("node")+"#"+cx.attr("ver") != nodeVer {
			return "", false
		}
		return cx.attr("hash"), true
	}
	return "", false
}

// capsIQ records disco#info queries with a caps node and verifies and caches
// their results. A query from the peer is for a contact of this side (out
// table), one from a local user for a contact of the other side (in table):
// the responder's mirrored presence names the hash algorithm of the ver.
func (m *Mirror) capsIQ(st Stanza, n *node, fromPeer bool) {
	switch st.Type {
	case "get":
		q, nd := discoNode(n)
		if q == nil || !strings.Contains(nd, "#") {
			return
		}
		k := pendKey(st.To, st.From, st.ID)
		if _, ok := m.caps.pend[k]; !ok && len(m.caps.pend) >= maxCapsPending {
			m.c.CapsUnverifiable++
			return
		}
		t := &m.in
		if fromPeer {
			t = &m.out
		}
		p := capsPending{node: nd, at: m.now}
		if e := m.entryOf(t, st.To); e != nil {
			p.hash, _ = t.capsOf(e, nd)
		}
		m.caps.pend[k] = p
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
		switch err := verifyCaps(q, p.hash, ver); {
		case err == nil:
		case errors.Is(err, errCapsHash):
			m.c.CapsBadHash++
			return
		case errors.Is(err, errCapsAlgo):
			// XEP-0115 §5.4: an unknown (or unseen) algorithm: the
			// result is used by its asker, never cached.
			m.c.CapsUnverifiable++
			return
		default:
			m.c.CapsRefused++
			return
		}
		m.caps.put(p.node, capsInner(q))
		m.c.CapsCached++
		m.dirty = true
	}
}

// capsInner is what the cache keeps of a verified <query/>: its child
// elements, canonical.
func capsInner(q *node) string {
	var b strings.Builder
	for i := range q.kids {
		if q.kids[i].local != "" {
			writeNode(&b, &q.kids[i], nsDisco)
		}
	}
	return b.String()
}

// Errors of verifyCaps.
var (
	errCapsHash    = errors.New("presence: caps: verification string does not match the ver")
	errCapsAlgo    = errors.New("presence: caps: unknown hash algorithm")
	errCapsRefused = errors.New("presence: caps: disco#info refused (XEP-0115 §5.4)")
)

// capsHashes are the algorithms verifyCaps knows, by their IANA names (the
// hash attribute of the caps element).
var capsHashes = map[string]func() hash.Hash{"sha-1": sha1.New, "sha-256": sha256.New}

// verifyCaps checks the disco#info query q against ver, the XEP-0115
// verification string the contact advertised with algorithm algo, and
// refuses (errCapsRefused) a result that is ambiguous or carries anything
// the hash does not cover, so that what is cached for every user is exactly
// what the ver stands for (§5.4):
//
//   - a value (identity category/type/lang/name, feature, field var or
//     value) containing '<', the separator of the verification string (a
//     feature "a<b" hashes as the two features "a" and "b");
//   - two identities with the same category/type/lang/name, two features
//     with the same var;
//   - a form without exactly one FORM_TYPE field, hidden and with exactly
//     one value, two forms with the same FORM_TYPE, two fields with the
//     same var in one form, a form whose type is not result;
//   - any child element or attribute that takes no part in the hash (it
//     would be cached and replayed unverified), and text inside identity,
//     feature, form or field.
func verifyCaps(q *node, algo, ver string) error {
	s, err := capsString(q)
	if err != nil {
		return err
	}
	h := capsHashes[algo]
	if h == nil {
		return fmt.Errorf("%w %q", errCapsAlgo, algo)
	}
	x := h()
	x.Write([]byte(s))
	if base64.StdEncoding.EncodeToString(x.Sum(nil)) != ver {
		return errCapsHash
	}
	return nil
}

// VerifyCapsXML verifies a serialized disco#info <query/> against ver,
// advertised with the hash algorithm algo ("sha-1", "sha-256"); see
// verifyCaps. It returns nil when the result may be cached.
func VerifyCapsXML(query []byte, algo, ver string) error {
	q, err := parseElement(query)
	if err != nil {
		return fmt.Errorf("%w: %v", errCapsRefused, err)
	}
	if q.space != nsDisco || q.local != "query" {
		return fmt.Errorf("%w: not a disco#info query", errCapsRefused)
	}
	return verifyCaps(&q, algo, ver)
}

// capsRefuse builds an errCapsRefused naming the reason.
func capsRefuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCapsRefused, fmt.Sprintf(format, args...))
}

// capsCheck refuses an element with attributes other than allowed, with
// child elements other than kids (in space), or with non-blank text when
// text is false.
func capsCheck(n *node, allowed []string, kids string, space string) error {
	for _, a := range n.attrs {
		name := a.Name.Local
		if a.Name.Space == nsXML {
			name = "xml:" + name
		} else if a.Name.Space != "" {
			name = "{" + a.Name.Space + "}" + name
		}
		ok := false
		for _, w := range allowed {
			ok = ok || w == name
		}
		if !ok {
			return capsRefuse("attribute %s on <%s/> is not covered by the hash", name, n.local)
		}
		if strings.ContainsRune(a.Value, '<') {
			return capsRefuse("%s of <%s/> contains '<': %q", name, n.local, a.Value)
		}
	}
	for i := range n.kids {
		k := &n.kids[i]
		if k.local == "" {
			if kids != "#text" && strings.TrimSpace(k.text) != "" {
				return capsRefuse("text inside <%s/>", n.local)
			}
			continue
		}
		if k.local != kids || k.space != space {
			return capsRefuse("<%s xmlns='%s'/> inside <%s/> is not covered by the hash", k.local, k.space, n.local)
		}
	}
	return nil
}

// capsString builds the XEP-0115 §5.1 verification string of q after the
// §5.4 checks (see verifyCaps).
func capsString(q *node) (string, error) {
	type form struct {
		typ    string
		fields [][2]string // var, "var<value<..."
	}
	var ids, feats []string
	var forms []form
	seenID := map[[4]string]bool{}
	seenFeat := map[string]bool{}
	seenForm := map[string]bool{}
	for i := range q.kids {
		k := &q.kids[i]
		switch {
		case k.local == "":
		case k.local == "identity" && k.space == nsDisco:
			if err := capsCheck(k, []string{"category", "type", "name", "xml:lang"}, "", ""); err != nil {
				return "", err
			}
			id := [4]string{k.attr("category"), k.attr("type"), langOf(k), k.attr("name")}
			if id[0] == "" || id[1] == "" {
				return "", capsRefuse("identity without category or type")
			}
			if seenID[id] {
				return "", capsRefuse("duplicate identity %s/%s/%s/%s", id[0], id[1], id[2], id[3])
			}
			seenID[id] = true
			ids = append(ids, id[0]+"/"+id[1]+"/"+id[2]+"/"+id[3])
		case k.local == "feature" && k.space == nsDisco:
			if err := capsCheck(k, []string{"var"}, "", ""); err != nil {
				return "", err
			}
			v := k.attr("var")
			if v == "" {
				return "", capsRefuse("feature without var")
			}
			if seenFeat[v] {
				return "", capsRefuse("duplicate feature %q", v)
			}
			seenFeat[v] = true
			feats = append(feats, v)
		case k.local == "x" && k.space == nsData:
			if err := capsCheck(k, []string{"type"}, "field", nsData); err != nil {
				return "", err
			}
			if t := k.attr("type"); t != "result" {
				return "", capsRefuse("form of type %q, want result", t)
			}
			var f form
			haveType := false
			seenVar := map[string]bool{}
			for j := range k.kids {
				fl := &k.kids[j]
				if fl.local == "" {
					continue
				}
				if err := capsCheck(fl, []string{"var", "type"}, "value", nsData); err != nil {
					return "", err
				}
				v := fl.attr("var")
				if v == "" {
					return "", capsRefuse("form field without var")
				}
				if seenVar[v] {
					return "", capsRefuse("form field %q twice in one form", v)
				}
				seenVar[v] = true
				var vals []string
				for x := range fl.kids {
					val := &fl.kids[x]
					if val.local == "" {
						continue
					}
					if err := capsCheck(val, nil, "#text", ""); err != nil {
						return "", err
					}
					t := val.textOf()
					if strings.ContainsRune(t, '<') {
						return "", capsRefuse("value of field %q contains '<': %q", v, t)
					}
					vals = append(vals, t)
				}
				if v == "FORM_TYPE" {
					if fl.attr("type") != "hidden" || len(vals) != 1 {
						return "", capsRefuse("FORM_TYPE field of type %q with %d values, want hidden with one", fl.attr("type"), len(vals))
					}
					f.typ, haveType = vals[0], true
					continue
				}
				sort.Strings(vals)
				s := v + "<"
				for _, v := range vals {
					s += v + "<"
				}
				f.fields = append(f.fields, [2]string{v, s})
			}
			if !haveType {
				return "", capsRefuse("form without FORM_TYPE")
			}
			if seenForm[f.typ] {
				return "", capsRefuse("two forms with FORM_TYPE %q", f.typ)
			}
			seenForm[f.typ] = true
			sort.Slice(f.fields, func(i, j int) bool { return f.fields[i][0] < f.fields[j][0] })
			forms = append(forms, f)
		default:
			return "", capsRefuse("<%s xmlns='%s'/> inside the query is not covered by the hash", k.local, k.space)
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
	return b.String(), nil
}

func langOf(n *node) string {
	for _, a := range n.attrs {
		if a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}
