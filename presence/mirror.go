package presence

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Config holds the mirror's parameters. See the package doc for what each
// timer does.
type Config struct {
	// Self and Peer are one local and one remote domain, used as from and
	// to of the gateway-to-gateway sync iqs. Required.
	Self, Peer string
	// Window is how long a fan-out is collected before its one mirror
	// stanza crosses (default 30ms).
	Window time.Duration
	// Refresh is the shortest interval between two refresh probes for one
	// contact crossing the link (default 5m).
	Refresh time.Duration
	// Timeout: an entry not confirmed for this long is removed and
	// unavailable is synthesized (default 30m; at least 2×Reprobe).
	Timeout time.Duration
	// Reprobe is the period of the local re-probe of this side's contacts
	// and of the digest heartbeat to the peer (default 10m).
	Reprobe time.Duration
	// MaxEntries bounds each of the two tables (default 100000). Presence
	// that would need a new entry beyond it passes through unmirrored.
	MaxEntries int
}

func (c *Config) fill() error {
	if c.Self == "" || c.Peer == "" {
		return errors.New("presence: Config.Self and Config.Peer are required")
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Millisecond
	}
	if c.Refresh <= 0 {
		c.Refresh = 5 * time.Minute
	}
	if c.Reprobe <= 0 {
		c.Reprobe = 10 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Minute
	}
	if c.Timeout < 2*c.Reprobe {
		return fmt.Errorf("presence: Timeout %v must be at least twice Reprobe %v", c.Timeout, c.Reprobe)
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100000
	}
	return nil
}

// Stanza is a stanza as the gateway's S2S edge sees it: the attributes and
// the element's bytes as in a jabber:server stream.
type Stanza struct {
	Name, From, To, Type, ID string
	Raw                      []byte
}

// Dest says where an action's stanza goes.
type Dest int

const (
	// ToLink sends the stanza to the peer gateway.
	ToLink Dest = iota
	// ToLocal delivers the stanza to the local server of its recipient.
	ToLocal
)

func (d Dest) String() string {
	if d == ToLink {
		return "link"
	}
	return "local"
}

// Action is one stanza the mirror wants sent.
type Action struct {
	Dest   Dest
	Stanza Stanza
	// Mirror marks a stanza of the mirror protocol to the peer (mirror
	// presence, sync iqs). Each changes or checks the peer's table relative
	// to the ones sent before it, so the link must carry them in the order
	// given, none replacing another and none overtaking another: a sync
	// digest that passes queued mirror stanzas finds the tables different
	// and makes every entry cross again.
	Mirror bool
}

// Counters count what the mirror did. All are totals since New.
type Counters struct {
	Absorbed        uint64 // presence stanzas from local servers carried inside a fan-out (not sent alone)
	Duplicates      uint64 // presence stanzas dropped: same content already delivered to that recipient
	FanoutSent      uint64 // mirror stanzas sent to the peer (changes)
	Expanded        uint64 // presence stanzas delivered locally from mirror stanzas
	ProbesAnswered  uint64 // local probes answered from the mirror
	ProbesForwarded uint64 // local probes the mirror could not answer (sent to the peer)
	RefreshProbes   uint64 // answered probes also forwarded as a refresh
	Reprobes        uint64 // probes sent to local servers by the re-probe timer
	Confirms        uint64 // confirmations sent for refresh probes
	Synthesized     uint64 // unavailable synthesized (time-out, bare unavailable, resync)
	Expired         uint64 // entries removed by time-out
	Revoked         uint64 // recipients removed by unsubscribe/unsubscribed/error
	Spoofed         uint64 // stanzas from local servers carrying the mirror namespace (dropped)
	Full            uint64 // presence passed through because a table was full
	SyncSent        uint64 // digests sent
	SyncMatched     uint64 // digests received that matched
	SyncRepaired    uint64 // entries re-sent after a digest mismatch
	CapsHits        uint64 // disco#info answered from the caps cache
	CapsMisses      uint64 // disco#info for an unknown or unverified caps ver (forwarded)
	CapsCached      uint64 // disco#info results verified and cached
	CapsBadHash     uint64 // disco#info results whose hash did not match the ver
}

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

// probeAnswerWait is how long after a probe from the peer the local server's
// answers count as answers to it: unchanged ones cross as a confirmation
// only. Servers answer within milliseconds.
const probeAnswerWait = time.Minute

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

// pending is a fan-out being collected: one presence from one contact
// resource (or bare JID) to several recipients.
type pending struct {
	bare, res string
	typ       string // "" or "unavailable"
	payload   string
	id        string // the first id seen among the copies (a server's copies of one broadcast share it)
	to        map[string]bool
	deadline  time.Time
}

// Mirror is the presence mirror of one gateway. It is not safe for
// concurrent use; the gateway serializes calls.
type Mirror struct {
	cfg     Config
	now     time.Time
	up      bool
	out     table // this side's contacts, as delivered to the other side
	in      table // the other side's contacts, as delivered to this side
	pend    map[string]*pending
	caps    *capsCache
	actions []Action
	c       Counters

	nextReprobe, nextSync time.Time
	syncSeq               uint64
	syncIDs               map[string]time.Time // sync iqs sent, awaiting their result
	dirty                 bool                 // state changed since the last State()
}

// New returns an empty mirror. now starts the timers.
func New(cfg Config, now time.Time) (*Mirror, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Mirror{
		cfg:         cfg,
		now:         now,
		out:         newTable(),
		in:          newTable(),
		pend:        map[string]*pending{},
		caps:        newCapsCache(),
		nextReprobe: now.Add(cfg.Reprobe),
		nextSync:    now.Add(cfg.Reprobe / 2),
		syncIDs:     map[string]time.Time{},
	}, nil
}

// Actions returns and clears the stanzas to send, in order.
func (m *Mirror) Actions() []Action {
	a := m.actions
	m.actions = nil
	return a
}

// Counters returns the totals.
func (m *Mirror) Counters() Counters { return m.c }

// Entries returns the number of entries in the out table (this side's
// contacts) and the in table (the other side's).
func (m *Mirror) Entries() (out, in int) { return m.out.n, m.in.n }

// Dirty reports whether the state changed since the last call to State.
func (m *Mirror) Dirty() bool { return m.dirty }

func (m *Mirror) emit(d Dest, name, from, to, typ, id, inner string) {
	m.actions = append(m.actions, Action{Dest: d, Mirror: d == ToLink, Stanza: Stanza{
		Name: name, From: from, To: to, Type: typ, ID: id,
		Raw: stanzaXML(name, from, to, typ, id, inner),
	}})
}

// addr is a parsed JID.
type addr struct{ local, domain, res string }

func (a addr) bare() string {
	if a.local == "" {
		return a.domain
	}
	return a.local + "@" + a.domain
}

func (a addr) full() string {
	if a.res == "" {
		return a.bare()
	}
	return a.bare() + "/" + a.res
}

func parseAddr(s string) (addr, bool) {
	if s == "" {
		return addr{}, false
	}
	j, err := jid.Parse(s)
	if err != nil {
		return addr{}, false
	}
	return addr{local: j.Localpart(), domain: strings.ToLower(j.Domainpart()), res: j.Resourcepart()}, true
}

func domainOf(bare string) string {
	if i := strings.LastIndexByte(bare, '@'); i >= 0 {
		return bare[i+1:]
	}
	return bare
}

func localOf(bare string) string {
	if i := strings.LastIndexByte(bare, '@'); i >= 0 {
		return bare[:i]
	}
	return ""
}

// SetLink tells the mirror whether the link to the peer is up. When it comes
// up, a digest of this side's table is sent so the peer can resynchronize.
func (m *Mirror) SetLink(now time.Time, up bool) {
	m.now = now
	was := m.up
	m.up = up
	if up && !was {
		m.sendSync()
		m.nextSync = now.Add(m.cfg.Reprobe)
	}
}

// Next returns when Tick should be called next.
func (m *Mirror) Next() time.Time {
	next := m.nextReprobe
	if m.nextSync.Before(next) {
		next = m.nextSync
	}
	for _, p := range m.pend {
		if p.deadline.Before(next) {
			next = p.deadline
		}
	}
	// Time-outs are checked at least every Reprobe/4.
	if t := m.now.Add(m.cfg.Reprobe / 4); t.Before(next) {
		next = t
	}
	return next
}

// Tick runs the timers due at now.
func (m *Mirror) Tick(now time.Time) {
	m.now = now
	m.flushDue(now)
	m.expire(now)
	if !now.Before(m.nextReprobe) {
		m.reprobe()
		m.nextReprobe = now.Add(m.cfg.Reprobe)
	}
	if !now.Before(m.nextSync) {
		if m.up {
			m.sendSync()
		}
		m.nextSync = now.Add(m.cfg.Reprobe)
	}
	m.caps.expire(now)
	for id, t := range m.syncIDs {
		if now.Sub(t) > m.cfg.Reprobe {
			delete(m.syncIDs, id)
		}
	}
}

// FromLocal takes a presence or iq that a local server sent to a remote
// domain. It returns true when the mirror handled it (answered, absorbed,
// dropped); false means the gateway sends it to the peer as it is.
func (m *Mirror) FromLocal(now time.Time, st Stanza) bool {
	m.now = now
	if st.Name != "presence" && st.Name != "iq" {
		return false
	}
	n, err := parseElement(st.Raw)
	if err != nil {
		return false
	}
	if hasNS(&n, NS) {
		m.c.Spoofed++
		return true // only gateways speak the mirror protocol
	}
	if st.Name == "iq" {
		return m.localIQ(st, &n)
	}
	from, ok1 := parseAddr(st.From)
	to, ok2 := parseAddr(st.To)
	if !ok1 || !ok2 {
		return false
	}
	switch st.Type {
	case "probe":
		return m.localProbe(st, from, to)
	case "unsubscribe", "error":
		// The local user no longer receives (or cannot receive) the remote
		// contact's presence.
		m.revoke(&m.in, to.bare(), from.bare())
		return false
	case "unsubscribed":
		// The local contact revoked the remote user's subscription.
		m.revoke(&m.out, from.bare(), to.bare())
		return false
	case "", "unavailable":
		return m.localPresence(from, to, st.Type, st.ID, &n)
	}
	return false
}

// FromPeer takes a presence or iq that arrived from the peer gateway for a
// local domain. It returns true when the stanza was for the mirror (and is
// consumed); false means the gateway delivers it as it is.
func (m *Mirror) FromPeer(now time.Time, st Stanza) bool {
	m.now = now
	if st.Name != "presence" && st.Name != "iq" {
		return false
	}
	n, err := parseElement(st.Raw)
	if err != nil {
		return false
	}
	if st.Name == "iq" {
		return m.peerIQ(st, &n)
	}
	from, ok1 := parseAddr(st.From)
	to, ok2 := parseAddr(st.To)
	if !ok1 || !ok2 {
		return false
	}
	if mx := n.child(NS, "m"); mx != nil {
		m.applyMirror(from, to, st.Type, st.ID, &n, mx)
		return true
	}
	switch st.Type {
	case "probe":
		// A probe that reached the authoritative side: if the contact's
		// presence comes back unchanged, a confirmation crosses instead.
		if c := m.out.c[to.bare()]; c != nil {
			c.probed, c.confirmed = now, nil
		}
	case "unsubscribe", "error":
		m.revoke(&m.out, to.bare(), from.bare())
	case "unsubscribed":
		m.revoke(&m.in, from.bare(), to.bare())
	}
	return false
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
	for _, r := range sortedKeys(c.res) {
		e := c.res[r]
		if !e.rcpt[prober] {
			continue
		}
		p := e.payload
		if !m.up {
			p += delayXML(to.domain, e.confirmed)
		}
		m.emit(ToLocal, "presence", to.bare()+"/"+r, st.From, "", e.id, p)
		answered = true
		if oldest.IsZero() || e.confirmed.Before(oldest) {
			oldest = e.confirmed
		}
	}
	if !answered {
		m.c.ProbesForwarded++
		return false
	}
	m.c.ProbesAnswered++
	if m.up && m.now.Sub(oldest) >= m.cfg.Refresh && m.now.Sub(c.refreshed) >= m.cfg.Refresh {
		c.refreshed = m.now
		m.c.RefreshProbes++
		m.actions = append(m.actions, Action{Dest: ToLink, Stanza: st})
	}
	return true
}

func delayXML(from string, t time.Time) string {
	return "<delay xmlns='" + nsDelay + "' from='" + from + "' stamp='" + t.UTC().Format("2006-01-02T15:04:05Z") + "'/>"
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
	p := payload(n)
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
	if typ == "" && e != nil && e.payload == p && e.rcpt[rcpt] {
		m.c.Duplicates++
		e.confirmed = m.now
		m.confirmProbe(from)
		return true
	}
	if typ == "" && e == nil && m.out.n >= m.cfg.MaxEntries {
		m.c.Full++
		return false
	}
	m.pend[key] = &pending{
		bare: from.bare(), res: from.res, typ: typ, payload: p, id: id,
		to: map[string]bool{rcpt: true}, deadline: m.now.Add(m.cfg.Window),
	}
	m.c.Absorbed++
	return true
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
	e := c.res[from.res]
	if e == nil || !e.rcpt[to.bare()] || e.payload != payload(n) {
		return false
	}
	m.c.Duplicates++
	e.confirmed = m.now
	m.confirmProbe(from)
	return true
}

// probedContact returns the out table's contact bare when the peer probed
// it within probeAnswerWait, else nil.
func (m *Mirror) probedContact(bare string) *contact {
	c := m.out.c[bare]
	if c == nil || c.probed.IsZero() || m.now.Sub(c.probed) > probeAnswerWait {
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

func key(bare, res string) string {
	if res == "" {
		return bare
	}
	return bare + "/" + res
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
			for _, r := range sortedKeys(c.res) {
				m.out.del(p.bare, r)
			}
		}
		m.sendMirror(k, p.typ, p.id, p.payload, p.to, nil, nil, false)
	case p.typ == "unavailable":
		// The recipients of the unavailable leave the entry; the others
		// (an unavailable after one subscription was revoked) keep it.
		var old map[string]bool
		if e := m.out.get(p.bare, p.res); e != nil {
			old = e.rcpt
			rest := map[string]bool{}
			for r := range old {
				if !p.to[r] {
					rest[r] = true
				}
			}
			if len(rest) == 0 {
				m.out.del(p.bare, p.res)
			} else {
				e.rcpt = rest
			}
		}
		add, del := diff(p.to, old)
		m.sendMirror(k, p.typ, p.id, p.payload, add, del, p.to, false)
	default:
		e := m.out.get(p.bare, p.res)
		if e != nil && e.payload == p.payload {
			add, _ := diff(p.to, e.rcpt)
			for r := range add {
				e.rcpt[r] = true
			}
			e.confirmed = m.now
			if len(add) > 0 {
				e.id = p.id
				m.sendMirror(k, "", p.id, p.payload, add, nil, nil, true)
			}
			return
		}
		var old map[string]bool
		if e != nil {
			old = e.rcpt
		}
		add, del := diff(p.to, old)
		m.out.put(p.bare, p.res, &entry{payload: p.payload, id: p.id, rcpt: p.to, confirmed: m.now})
		m.sendMirror(k, "", p.id, p.payload, add, del, p.to, false)
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

// reprobe probes each local contact of the out table, from one of its
// recipients, at its local server: unchanged answers confirm the entries
// without crossing the link, changes cross as usual.
func (m *Mirror) reprobe() {
	for _, b := range sortedKeys(m.out.c) {
		c := m.out.c[b]
		var from string
		for _, e := range c.res {
			for r := range e.rcpt {
				if from == "" || r < from {
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

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
