package sim

import (
	"strings"
	"time"
)

// Handle takes one stanza that arrived from the other side over S2S and
// returns what a real server and its clients would send back: probe
// answers, iq results and errors, receipts, follow-up queries. It accepts
// anything: a stanza it cannot parse, or one not addressed to this
// server, is counted in Stats.Dropped and answered with nothing.
func (s *Server) Handle(now time.Time, raw []byte) [][]byte {
	if len(raw) == 0 || len(raw) > maxStanza {
		s.stats.Dropped++
		return nil
	}
	n, err := parseStanza(raw)
	if err != nil {
		s.stats.Dropped++
		return nil
	}
	switch n.XMLName.Space {
	case "", "jabber:server", "jabber:client":
	default:
		s.stats.Dropped++
		return nil
	}
	from, ok1 := parseJID(n.attr("from"))
	to, ok2 := parseJID(n.attr("to"))
	if !ok1 || !ok2 || to.domain != s.domain || from.domain == s.domain {
		s.stats.Dropped++
		return nil
	}
	switch n.XMLName.Local {
	case "message":
		return s.handleMessage(now, n, from, to)
	case "presence":
		return s.handlePresence(now, n, from, to)
	case "iq":
		return s.handleIQ(now, n, from, to)
	}
	s.stats.Dropped++
	return nil
}

func (s *Server) handleMessage(now time.Time, n *node, from, to jid) [][]byte {
	typ, id := n.attr("type"), n.attr("id")
	if typ == "error" {
		return nil
	}
	body := n.child("", "body")
	if body != nil && id != "" {
		s.tr.delivered(id, now)
	}
	u := s.byLocal[to.local]
	if to.local == "" {
		return nil // messages to the domain itself: nothing to do
	}
	if u == nil {
		if typ == "groupchat" || typ == "headline" {
			return nil
		}
		return s.errorReply("message", from, to, id, "cancel", "service-unavailable")
	}
	if body == nil {
		return nil // receipts, markers, chat states: the client just shows them
	}
	wantsReceipt := n.child(nsReceipts, "request") != nil && id != ""
	if !u.online {
		if len(u.offline) >= maxOffline {
			u.offline = u.offline[1:]
			s.stats.OfflineDropped++
		}
		u.offline = append(u.offline, offlineMsg{from: from.String(), id: id, receipt: wantsReceipt})
		s.stats.OfflineStored++
		return nil
	}
	var out [][]byte
	if wantsReceipt {
		out = append(out, s.marker(u, from.String(), "received", id))
	}
	if n.child(nsMarkers, "markable") != nil && id != "" && s.rng.IntN(100) < 60 {
		s.at(now.Add(s.uniform(time.Second, 20*time.Second)), &event{kind: evDisplayed, u: u, to: from, id: id})
	}
	if u.contactSet[from.bare()] && s.rng.IntN(100) < 45 {
		s.at(now.Add(s.uniform(3*time.Second, 15*time.Second)),
			&event{kind: evChat, u: u, to: from, n: 1 + s.rng.IntN(2)})
	}
	return out
}

func (s *Server) handlePresence(now time.Time, n *node, from, to jid) [][]byte {
	typ := n.attr("type")
	u := s.byLocal[to.local]
	if to.local == "" {
		u = nil
	}
	switch typ {
	case "probe":
		s.tr.probeAnswered(from.domain)
		var b builder
		switch {
		case u == nil || !u.contactSet[from.bare()]:
			b.empty("presence", "from", to.bare(), "to", from.String(), "type", "unsubscribed")
		case !u.online:
			b.empty("presence", "from", u.bare, "to", from.String(), "type", "unavailable")
		default:
			return [][]byte{s.presence(u, from.String(), u.presenceAt)}
		}
		return [][]byte{b.bytes()}
	case "":
		if u == nil || from.resource == "" || !u.contactSet[from.bare()] {
			return nil
		}
		return s.seePresence(n, u, from)
	case "unavailable":
		if res := s.remote[from.bare()]; res != nil {
			delete(res, from.resource)
			if len(res) == 0 || from.resource == "" {
				delete(s.remote, from.bare())
			}
		}
	case "subscribe":
		// Already subscribed: the server answers for the user (RFC 6121 3.1.3).
		if u != nil && u.contactSet[from.bare()] {
			var b builder
			b.empty("presence", "from", u.bare, "to", from.bare(), "type", "subscribed")
			return [][]byte{b.bytes()}
		}
	}
	return nil
}

// seePresence records an available presence from a contact and issues
// what clients and server do on seeing it: a caps disco#info query for an
// unknown ver, an avatar fetch for an unknown photo hash.
func (s *Server) seePresence(n *node, u *user, from jid) [][]byte {
	var r remoteRes
	if c := n.child(nsCaps, "c"); c != nil {
		r.node, r.ver = c.attr("node"), c.attr("ver")
	}
	if x := n.child(nsVCardUpd, "x"); x != nil {
		if p := x.child("", "photo"); p != nil {
			r.photo = strings.TrimSpace(p.Text)
		}
	}
	bare := from.bare()
	if s.remote[bare] == nil {
		s.remote[bare] = make(map[string]*remoteRes)
	}
	s.remote[bare][from.resource] = &r

	requester := u.bare // Prosody's mod_pep asks on the account's behalf
	if u.online {
		requester = u.full
	}
	var out [][]byte
	if r.node != "" && r.ver != "" {
		key := r.node + "#" + r.ver
		if !s.capsKnown[key] {
			s.capsKnown[key] = true
			var b builder
			b.empty("query", "xmlns", nsDiscoInfo, "node", key)
			out = s.request(out, pendDisco, requester, from.String(), "get", b.String(), s.iqID(u))
		}
	}
	if r.photo != "" && !s.photoKnown[r.photo] && u.online {
		s.photoKnown[r.photo] = true
		if s.rng.IntN(100) < 70 {
			if u.client.avatarPEP {
				var b builder
				b.empty("items", "node", nsAvatarMD, "max_items", "1")
				out = s.request(out, pendAvatarMeta, u.full, bare, "get",
					"<pubsub xmlns='"+nsPubSub+"'>"+b.String()+"</pubsub>", s.iqID(u))
			} else {
				out = s.request(out, pendVCard, u.full, bare, "get", "<vCard xmlns='vcard-temp'/>", s.iqID(u))
			}
		}
	}
	return out
}

func (s *Server) iqID(u *user) string {
	if u.online {
		return u.client.stanzaID(s.rng)
	}
	return s.serverID()
}

func (s *Server) handleIQ(now time.Time, n *node, from, to jid) [][]byte {
	typ, id := n.attr("type"), n.attr("id")
	switch typ {
	case "result", "error":
		p, ok := s.pending[id]
		if !ok || p.peer != from.String() {
			return nil
		}
		delete(s.pending, id)
		s.tr.iqAnswered(s.domain)
		if typ == "result" && p.kind == pendAvatarMeta {
			return s.fetchAvatarData(n, p)
		}
		return nil
	case "get", "set":
	default:
		if id == "" {
			return nil
		}
		return s.errorReply("iq", from, to, id, "modify", "bad-request")
	}
	if id == "" || len(n.Nodes) != 1 {
		return s.errorReply("iq", from, to, id, "modify", "bad-request")
	}
	q := &n.Nodes[0]
	ns, name := q.XMLName.Space, q.XMLName.Local
	get := typ == "get"
	result := func(payload string) [][]byte {
		var b builder
		b.open("iq", "from", to.String(), "to", from.String(), "type", "result", "id", id)
		b.WriteString(payload)
		b.close("iq")
		return [][]byte{b.bytes()}
	}
	unavailable := func() [][]byte {
		return s.errorReply("iq", from, to, id, "cancel", "service-unavailable")
	}

	// The server itself.
	if to.local == "" {
		switch {
		case to.resource != "":
			return unavailable()
		case get && ns == nsPing && name == "ping":
			return result("")
		case get && ns == nsDiscoInfo && name == "query" && q.attr("node") == "":
			return result(discoInfo("", "server", "im", "Prosody", serverFeatures))
		case get && ns == nsVersion && name == "query":
			return result("<query xmlns='jabber:iq:version'><name>Prosody</name><version>0.12.3</version></query>")
		}
		return unavailable()
	}
	u := s.byLocal[to.local]
	if u == nil {
		return unavailable()
	}

	// The account (bare JID): the server answers on the user's behalf.
	if to.resource == "" {
		switch {
		case !get:
			return s.errorReply("iq", from, to, id, "auth", "forbidden")
		case ns == nsVCard && name == "vCard":
			return result(u.vcard())
		case ns == nsDiscoInfo && name == "query" && q.attr("node") == "":
			return result(discoInfo("", "account", "registered", "", accountFeatures))
		case ns == nsPubSub && name == "pubsub":
			return s.pubsubGet(q, u, from, to, id, result)
		}
		return unavailable()
	}

	// A client (full JID).
	if !u.online || to.resource != u.resource {
		return unavailable()
	}
	c := u.client
	switch {
	case get && ns == nsPing && name == "ping":
		return result("")
	case get && ns == nsDiscoInfo && name == "query":
		node := q.attr("node")
		if node != "" && node != c.node+"#"+c.ver {
			return s.errorReply("iq", from, to, id, "cancel", "item-not-found")
		}
		return result(discoInfo(node, c.category, c.typ, c.name, c.features))
	case get && ns == nsVersion && name == "query":
		return result("<query xmlns='jabber:iq:version'><name>" + c.name + "</name><version>" + c.version + "</version></query>")
	}
	return unavailable()
}

func (s *Server) pubsubGet(q *node, u *user, from, to jid, id string, result func(string) [][]byte) [][]byte {
	items := q.child(nsPubSub, "items")
	if items == nil {
		return s.errorReply("iq", from, to, id, "modify", "bad-request")
	}
	if !u.contactSet[from.bare()] {
		return s.errorReply("iq", from, to, id, "auth", "forbidden") // access model "presence"
	}
	if u.photoHash == "" {
		return s.errorReply("iq", from, to, id, "cancel", "item-not-found")
	}
	switch items.attr("node") {
	case nsAvatarMD:
		var b builder
		b.open("item", "id", u.photoHash)
		b.open("metadata", "xmlns", nsAvatarMD)
		b.empty("info", "bytes", itoa(len(u.photo)), "height", "96", "width", "96", "id", u.photoHash, "type", "image/webp")
		b.close("metadata")
		b.close("item")
		return result(avatarItems(nsAvatarMD, b.String()))
	case "urn:xmpp:avatar:data":
		it := items.child(nsPubSub, "item")
		if it != nil && it.attr("id") != "" && it.attr("id") != u.photoHash {
			return s.errorReply("iq", from, to, id, "cancel", "item-not-found")
		}
		var b builder
		b.open("item", "id", u.photoHash)
		b.elem("data", b64(u.photo), "xmlns", "urn:xmpp:avatar:data")
		b.close("item")
		return result(avatarItems("urn:xmpp:avatar:data", b.String()))
	}
	return s.errorReply("iq", from, to, id, "cancel", "item-not-found")
}

// fetchAvatarData follows an avatar metadata result with the data request,
// as Conversations does.
func (s *Server) fetchAvatarData(n *node, p pendingIQ) [][]byte {
	ps := n.child(nsPubSub, "pubsub")
	if ps == nil {
		return nil
	}
	items := ps.child(nsPubSub, "items")
	if items == nil {
		return nil
	}
	it := items.child(nsPubSub, "item")
	if it == nil || it.attr("id") == "" {
		return nil
	}
	var b builder
	b.empty("item", "id", it.attr("id"))
	payload := avatarItems("urn:xmpp:avatar:data", b.String())
	return s.request(nil, pendAvatarData, p.requester, p.peer, "get", payload, randString(s.rng, b64url, 22))
}

// errorReply is the stanza error a server returns: same name and id,
// addresses swapped, no payload (as Prosody's st.error_reply).
func (s *Server) errorReply(name string, from, to jid, id, typ, cond string) [][]byte {
	s.stats.ErrorsSent++
	var b builder
	b.open(name, "from", to.String(), "to", from.String(), "type", "error", "id", id)
	b.open("error", "type", typ, "by", s.domain)
	b.empty(cond, "xmlns", nsStanzas)
	b.close("error")
	b.close(name)
	return [][]byte{b.bytes()}
}

func discoInfo(node, category, typ, name string, features []string) string {
	var b builder
	b.open("query", "xmlns", nsDiscoInfo, "node", node)
	b.empty("identity", "category", category, "type", typ, "name", name)
	for _, f := range features {
		b.empty("feature", "var", f)
	}
	b.close("query")
	return b.String()
}
