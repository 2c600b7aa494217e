package presence

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
)

// entryHash is the digest of one entry: its key, payload and recipients.
func (t *table) entryHash(k string, e *entry) string {
	h := sha256.New()
	h.Write([]byte(k))
	h.Write([]byte{0})
	for _, id := range e.ids[:e.npl] {
		h.Write([]byte(t.s.str(id)))
	}
	for _, r := range t.rcpts(e) {
		h.Write([]byte{0})
		h.Write([]byte(r))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// digest returns the per-entry hashes of t and the root over them.
func digest(t *table) (root string, hashes map[string]string) {
	hashes = map[string]string{}
	h := sha256.New()
	for _, k := range t.keys() {
		kk := key(k[0], k[1])
		eh := t.entryHash(kk, t.get(k[0], k[1]))
		hashes[kk] = eh
		h.Write([]byte(kk + " " + eh + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), hashes
}

// sendSync sends the digest of the out table to the peer.
func (m *Mirror) sendSync() {
	m.FlushAll()
	root, _ := digest(&m.out)
	m.syncSeq++
	id := "isthmus-sync-" + strconv.FormatInt(m.now.Unix(), 36) + "-" + strconv.FormatUint(m.syncSeq, 10)
	m.syncIDs[id] = m.now
	m.c.SyncSent++
	m.emit(ToLink, "iq", m.cfg.Self, m.cfg.Peer, "set", id,
		"<sync xmlns='"+NS+"' digest='"+root+"' n='"+strconv.Itoa(m.out.n)+"'/>")
}

// peerIQ handles iqs from the peer: sync requests and results, and disco#info
// results for the caps cache.
func (m *Mirror) peerIQ(st Stanza, n *node) bool {
	if sy := n.child(NS, "sync"); sy != nil && st.Type == "set" {
		m.syncRequest(st, sy)
		return true
	}
	if _, ok := m.syncIDs[st.ID]; ok && (st.Type == "result" || st.Type == "error") {
		delete(m.syncIDs, st.ID)
		if sy := n.child(NS, "sync"); sy != nil && st.Type == "result" {
			m.syncRepair(sy)
		}
		return true
	}
	m.capsIQ(st, n, true)
	return false
}

// syncRequest compares the peer's out digest with our in table. Either way
// every in entry counts as confirmed now: entries that differ are repaired
// by the peer right after our answer.
func (m *Mirror) syncRequest(st Stanza, sy *node) {
	root, hashes := digest(&m.in)
	now := stampOf(m.now)
	for _, c := range m.in.c {
		for _, e := range c.ents {
			e.confirmed = now
		}
	}
	m.dirty = true
	if root == sy.attr("digest") {
		m.c.SyncMatched++
		m.emit(ToLink, "iq", m.cfg.Self, m.cfg.Peer, "result", st.ID, "")
		return
	}
	var b strings.Builder
	b.WriteString("<sync xmlns='" + NS + "'>")
	for _, k := range sortedKeys(hashes) {
		b.WriteString("<e k='")
		escape(&b, k, true)
		b.WriteString("' h='" + hashes[k] + "'/>")
	}
	b.WriteString("</sync>")
	m.emit(ToLink, "iq", m.cfg.Self, m.cfg.Peer, "result", st.ID, b.String())
}

// syncRepair re-sends the out entries whose hash differs from the peer's,
// and removes at the peer the entries we do not have.
func (m *Mirror) syncRepair(sy *node) {
	theirs := map[string]string{}
	for i := range sy.kids {
		k := &sy.kids[i]
		if k.local == "e" && k.space == NS {
			theirs[k.attr("k")] = k.attr("h")
		}
	}
	_, ours := digest(&m.out)
	var keys []string
	for k := range ours {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if theirs[k] == ours[k] {
			continue
		}
		a, ok := parseAddr(k)
		if !ok {
			continue
		}
		e := m.out.get(a.bare(), a.res)
		m.c.SyncRepaired++
		m.sendReset(k, e)
	}
	for _, k := range sortedKeys(theirs) {
		if _, ok := ours[k]; ok {
			continue
		}
		m.c.SyncRepaired++
		m.emit(ToLink, "presence", k, m.cfg.Peer, "unavailable", "", "<m xmlns='"+NS+"' reset='1'/>")
	}
}

// sendReset sends the whole state of one out entry, one stanza per
// recipient domain.
func (m *Mirror) sendReset(k string, e *entry) {
	rcpt := m.out.rcptSet(e)
	doms := map[string]bool{}
	for r := range rcpt {
		doms[domainOf(r)] = true
	}
	if len(doms) == 0 {
		doms[m.cfg.Peer] = true
	}
	for _, d := range sortedKeys(doms) {
		var b strings.Builder
		b.WriteString(m.out.payload(e))
		b.WriteString("<m xmlns='" + NS + "'")
		writeList(&b, "add", rcpt, d)
		b.WriteString(" reset='1'/>")
		m.c.FanoutSent++
		m.emit(ToLink, "presence", k, d, "", e.id, b.String())
	}
}
