package sim

import (
	"container/heap"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Server is one simulated XMPP server (a Prosody look-alike) with its
// users and their clients. It is a pure state machine: Step and Handle
// take the current time and return serialized stanzas for the other side.
// It is not safe for concurrent use.
type Server struct {
	domain, peer string
	intensity    float64
	rng          *rand.Rand
	tr           *Tracker

	users   []*user
	byLocal map[string]*user

	started bool
	events  eventQueue
	seq     uint64 // tie-breaker keeping event order deterministic

	remote     map[string]map[string]*remoteRes // contact bare JID -> resource -> last presence
	capsKnown  map[string]bool                  // node#ver already queried
	photoKnown map[string]bool                  // avatar hashes already fetched (or skipped)
	pending    map[string]pendingIQ             // outstanding iq requests by id

	stats Stats
}

// Stats counts what a Server did besides the workload itself.
type Stats struct {
	Dropped        int // stanzas Handle could not parse or that were not addressed to this server
	ErrorsSent     int // stanza errors returned by Handle
	OfflineStored  int // chat messages stored for offline users
	OfflineDropped int // stored messages dropped because a user's store was full
}

type user struct {
	local, bare, full, resource, name string
	client                            *client
	contacts                          []string // remote bare JIDs, roster order
	contactSet                        map[string]bool
	startOnline                       bool

	online     bool
	session    int // bumped at login and logout; events of an older session are stale
	show       string
	status     string
	idleSince  time.Time
	presenceAt time.Time // when the current presence was set (delay stamp on probe answers)
	photo      []byte
	photoHash  string
	offline    []offlineMsg
}

func (u *user) addContact(bare string) {
	u.contacts = append(u.contacts, bare)
	u.contactSet[bare] = true
}

type offlineMsg struct {
	from, id string
	receipt  bool
}

type remoteRes struct {
	node, ver, photo string
}

type pendingKind int

const (
	pendPing pendingKind = iota
	pendDisco
	pendVCard
	pendAvatarMeta
	pendAvatarData
)

type pendingIQ struct {
	kind      pendingKind
	peer      string // JID the request went to; the answer must come from it
	requester string // JID the request came from
}

type evKind int

const (
	evLogin evKind = iota
	evLogout
	evPresence
	evChatStart
	evChat
	evDisplayed
	evClientPing
	evServerPing
	evServerDisco
)

type event struct {
	at       time.Time
	seq      uint64
	kind     evKind
	u        *user
	session  int
	to       jid    // chat target / displayed marker target
	id       string // displayed: id of the message read
	n        int    // chat: messages left in this burst
	composed bool   // chat: composing state already sent
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// Domain is the server's domain.
func (s *Server) Domain() string { return s.domain }

// Tracker is the tracker shared with the other server of the pair.
func (s *Server) Tracker() *Tracker { return s.tr }

// Stats returns the server's counters.
func (s *Server) Stats() Stats { return s.stats }

// Online is the number of users currently logged in.
func (s *Server) Online() int {
	n := 0
	for _, u := range s.users {
		if u.online {
			n++
		}
	}
	return n
}

// Next is when Step should next be called. Before the first Step it is
// the zero time: call Step at once.
func (s *Server) Next() time.Time {
	if !s.started || len(s.events) == 0 {
		return time.Time{}
	}
	return s.events[0].at
}

// Step runs every workload event due at or before now and returns the
// stanzas the server sends to the other side, in order. The first call
// starts the workload at now.
func (s *Server) Step(now time.Time) [][]byte {
	if !s.started {
		s.start(now)
	}
	var out [][]byte
	for len(s.events) > 0 && !s.events[0].at.After(now) {
		ev := heap.Pop(&s.events).(*event)
		out = s.run(now, ev, out)
	}
	return out
}

func (s *Server) start(now time.Time) {
	s.started = true
	for _, u := range s.users {
		if u.startOnline {
			s.at(now.Add(time.Duration(s.rng.Int64N(int64(initialLogins)))), &event{kind: evLogin, u: u})
		} else {
			s.after(now, meanOffline, &event{kind: evLogin, u: u})
		}
	}
	s.at(now.Add(time.Second+time.Duration(s.rng.IntN(4000))*time.Millisecond), &event{kind: evServerDisco})
	s.at(now.Add(10*time.Second+time.Duration(s.rng.IntN(30000))*time.Millisecond), &event{kind: evServerPing})
}

// at schedules ev at t.
func (s *Server) at(t time.Time, ev *event) {
	ev.at = t
	ev.seq = s.seq
	s.seq++
	if ev.u != nil && ev.session == 0 {
		ev.session = ev.u.session
	}
	heap.Push(&s.events, ev)
}

// after schedules ev an exponentially distributed time (of the given mean
// at intensity 1) after now.
func (s *Server) after(now time.Time, mean time.Duration, ev *event) {
	d := time.Duration(s.rng.ExpFloat64() * float64(mean) / s.intensity)
	s.at(now.Add(max(d, time.Millisecond)), ev)
}

// uniform is a duration uniformly drawn from [lo, hi).
func (s *Server) uniform(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

func (s *Server) run(now time.Time, ev *event, out [][]byte) [][]byte {
	u := ev.u
	if u != nil && ev.kind != evLogin && (!u.online || ev.session != u.session) {
		return out // stale: the user logged out since
	}
	switch ev.kind {
	case evLogin:
		if u.online {
			return out
		}
		out = s.login(now, u, out)
	case evLogout:
		out = s.logout(now, u, out)
	case evPresence:
		s.changePresence(now, u)
		out = s.broadcast(u, out)
		s.after(now, meanPresence, &event{kind: evPresence, u: u})
	case evChatStart:
		out = s.startChat(now, u, out)
		s.after(now, meanChat, &event{kind: evChatStart, u: u})
	case evChat:
		out = s.chat(now, ev, out)
	case evDisplayed:
		out = append(out, s.marker(u, ev.to.String(), "displayed", ev.id))
	case evClientPing:
		if res := s.onlineResources(s.randomContact(u)); len(res) > 0 {
			to := res[s.rng.IntN(len(res))]
			out = s.request(out, pendPing, u.full, to, "get", `<ping xmlns='urn:xmpp:ping'/>`, u.client.stanzaID(s.rng))
		}
		s.after(now, meanClientPing, &event{kind: evClientPing, u: u})
	case evServerPing:
		out = s.request(out, pendPing, s.domain, s.peer, "get", `<ping xmlns='urn:xmpp:ping'/>`, s.serverID())
		s.at(now.Add(time.Duration(float64(serverPingGap)/s.intensity)), &event{kind: evServerPing})
	case evServerDisco:
		out = s.request(out, pendDisco, s.domain, s.peer, "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`, s.serverID())
	}
	return out
}

// serverID is an id in Prosody's style for server-originated stanzas.
func (s *Server) serverID() string { return randString(s.rng, alnum, 12) }

func (s *Server) login(now time.Time, u *user, out [][]byte) [][]byte {
	u.online = true
	u.session++
	u.show, u.status, u.idleSince = "", "", time.Time{}
	if s.rng.IntN(3) == 0 {
		u.status = statusTexts[s.rng.IntN(len(statusTexts))]
	}
	u.presenceAt = now
	// Prosody probes every contact the user is subscribed to, then
	// broadcasts the initial presence to every subscriber.
	for _, c := range u.contacts {
		var b builder
		b.empty("presence", "from", u.bare, "to", c, "type", "probe")
		out = append(out, b.bytes())
		s.tr.probeSent(s.domain)
	}
	out = s.broadcast(u, out)
	// The client acknowledges what it finds in offline storage.
	for _, m := range u.offline {
		if m.receipt {
			out = append(out, s.marker(u, m.from, "received", m.id))
		}
	}
	u.offline = nil
	s.after(now, meanOnline, &event{kind: evLogout, u: u})
	s.after(now, meanPresence, &event{kind: evPresence, u: u})
	s.after(now, meanChat, &event{kind: evChatStart, u: u})
	s.after(now, meanClientPing, &event{kind: evClientPing, u: u})
	return out
}

func (s *Server) logout(now time.Time, u *user, out [][]byte) [][]byte {
	for _, c := range u.contacts {
		var b builder
		b.open("presence", "from", u.full, "to", c, "type", "unavailable")
		if s.rng.IntN(3) == 0 {
			b.elem("status", disconnectReasons[s.rng.IntN(len(disconnectReasons))])
		}
		b.close("presence")
		out = append(out, b.bytes())
	}
	u.online = false
	u.session++
	s.after(now, meanOffline, &event{kind: evLogin, u: u})
	return out
}

func (s *Server) changePresence(now time.Time, u *user) {
	switch n := s.rng.IntN(100); {
	case n < 30:
		u.show = ""
	case n < 60:
		u.show = "away"
	case n < 70:
		u.show = "xa"
	case n < 85:
		u.show = "dnd"
	default:
		u.show = "chat"
	}
	if s.rng.IntN(2) == 0 {
		u.status = statusTexts[s.rng.IntN(len(statusTexts))]
	}
	u.idleSince = time.Time{}
	if (u.show == "away" || u.show == "xa") && s.rng.IntN(2) == 0 {
		u.idleSince = now.Add(-s.uniform(time.Minute, time.Hour)).Truncate(time.Second)
	}
	if s.rng.IntN(50) == 0 {
		s.newPhoto(u)
	}
	u.presenceAt = now
}

// broadcast fans u's presence out to every contact, one stanza each.
func (s *Server) broadcast(u *user, out [][]byte) [][]byte {
	for _, c := range u.contacts {
		out = append(out, s.presence(u, c, time.Time{}))
	}
	return out
}

var gajimPriority = map[string]int{"": 50, "chat": 50, "away": 40, "xa": 30, "dnd": 20}

// presence serializes u's current presence to one recipient; a non-zero
// delayed adds the delay stamp Prosody puts on probe answers.
func (s *Server) presence(u *user, to string, delayed time.Time) []byte {
	var b builder
	b.open("presence", "from", u.full, "to", to)
	if u.show != "" {
		b.elem("show", u.show)
	}
	if u.status != "" {
		b.elem("status", u.status)
	}
	if u.client.priority {
		b.elem("priority", strconv.Itoa(gajimPriority[u.show]))
	}
	b.empty("c", "xmlns", nsCaps, "hash", "sha-1", "node", u.client.node, "ver", u.client.ver)
	b.open("x", "xmlns", nsVCardUpd)
	if u.photoHash != "" {
		b.elem("photo", u.photoHash)
	} else {
		b.empty("photo")
	}
	b.close("x")
	if !u.idleSince.IsZero() {
		b.empty("idle", "xmlns", nsIdle, "since", u.idleSince.UTC().Format(time.RFC3339))
	}
	if !delayed.IsZero() {
		b.empty("delay", "xmlns", nsDelay, "from", s.domain, "stamp", delayed.UTC().Format("2006-01-02T15:04:05Z"))
	}
	b.close("presence")
	return b.bytes()
}

func (s *Server) randomContact(u *user) string {
	if len(u.contacts) == 0 {
		return ""
	}
	return u.contacts[s.rng.IntN(len(u.contacts))]
}

// onlineResources lists the full JIDs of a contact as its presence says.
func (s *Server) onlineResources(bare string) []string {
	var out []string
	for r := range s.remote[bare] {
		out = append(out, bare+"/"+r)
	}
	slices.Sort(out) // map order must not leak into the seeded stream
	return out
}

func (s *Server) startChat(now time.Time, u *user, out [][]byte) [][]byte {
	if len(u.contacts) == 0 {
		return out
	}
	var online []string
	for _, c := range u.contacts {
		if len(s.remote[c]) > 0 {
			online = append(online, c)
		}
	}
	target := s.randomContact(u)
	if len(online) > 0 && s.rng.IntN(100) < 85 {
		target = online[s.rng.IntN(len(online))]
	}
	to, _ := parseJID(target)
	if res := s.onlineResources(target); len(res) > 0 && s.rng.IntN(100) < 40 {
		to, _ = parseJID(res[0])
	}
	return s.chat(now, &event{kind: evChat, u: u, session: u.session, to: to, n: 1 + s.rng.IntN(3)}, out)
}

// chat sends the next message of a burst, preceded by a composing
// notification some of the time.
func (s *Server) chat(now time.Time, ev *event, out [][]byte) [][]byte {
	u := ev.u
	to := ev.to
	if to.resource != "" && s.remote[to.bare()][to.resource] == nil {
		to.resource = "" // that resource went away: write to the account
	}
	if !ev.composed && s.rng.IntN(100) < 60 {
		var b builder
		b.open("message", "from", u.full, "to", to.String(), "type", "chat", "id", s.maybeID(u))
		b.empty("composing", "xmlns", nsChatState)
		b.empty("no-store", "xmlns", nsHints)
		b.close("message")
		out = append(out, b.bytes())
		next := *ev
		next.composed = true
		s.at(now.Add(s.uniform(2*time.Second, 8*time.Second)), &next)
		return out
	}
	id := u.client.stanzaID(s.rng)
	var b builder
	b.open("message", "from", u.full, "to", to.String(), "type", "chat", "id", id)
	b.elem("body", sentences[s.rng.IntN(len(sentences))])
	b.empty("request", "xmlns", nsReceipts)
	b.empty("markable", "xmlns", nsMarkers)
	b.empty("origin-id", "xmlns", nsSID, "id", id)
	b.empty("active", "xmlns", nsChatState)
	b.close("message")
	out = append(out, b.bytes())
	from, _ := parseJID(u.full)
	s.tr.sent(id, from, to, now)
	if ev.n > 1 {
		next := *ev
		next.n--
		next.composed = false
		s.at(now.Add(s.uniform(3*time.Second, 15*time.Second)), &next)
	}
	return out
}

// maybeID gives chat-state notifications an id the way the client does:
// UUID clients always do, the others do not.
func (s *Server) maybeID(u *user) string {
	if u.client.uuidIDs {
		return uuid4(s.rng)
	}
	return ""
}

// marker builds a receipt ("received") or chat marker ("displayed").
func (s *Server) marker(u *user, to, kind, id string) []byte {
	ns := nsReceipts
	if kind != "received" {
		ns = nsMarkers
	}
	var b builder
	b.open("message", "from", u.full, "to", to, "type", "chat", "id", u.client.stanzaID(s.rng))
	b.empty(kind, "xmlns", ns, "id", id)
	b.empty("store", "xmlns", nsHints)
	b.close("message")
	return b.bytes()
}

// request appends an iq get/set and remembers it as pending.
func (s *Server) request(out [][]byte, kind pendingKind, from, to, typ, payload, id string) [][]byte {
	var b builder
	b.open("iq", "from", from, "to", to, "type", typ, "id", id)
	b.WriteString(payload)
	b.close("iq")
	if len(s.pending) < maxPending {
		s.pending[id] = pendingIQ{kind: kind, peer: to, requester: from}
	}
	s.tr.iqSent(s.domain)
	return append(out, b.bytes())
}

func avatarItems(node, inner string) string {
	var b builder
	b.open("pubsub", "xmlns", nsPubSub)
	b.open("items", "node", node)
	b.WriteString(inner)
	b.close("items")
	b.close("pubsub")
	return b.String()
}

func (u *user) vcard() string {
	var b builder
	b.open("vCard", "xmlns", nsVCard)
	b.elem("FN", u.name)
	b.elem("NICKNAME", u.local)
	if u.photoHash != "" {
		b.open("PHOTO")
		b.elem("TYPE", "image/webp")
		b.elem("BINVAL", base64.StdEncoding.EncodeToString(u.photo))
		b.close("PHOTO")
	}
	b.close("vCard")
	return b.String()
}
