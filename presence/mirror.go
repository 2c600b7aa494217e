package presence

import (
	"errors"
	"fmt"
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
	// MaxBytes bounds what each table's entries count (default 64 MiB): the
	// bytes of their JIDs, payloads, ids and recipient JIDs, as if none
	// were shared, and entryOverhead per entry; the count depends only on
	// the entries, so a table and the peer's table that mirrors it count
	// the same. A fan-out whose entry would take its table beyond it
	// crosses as plain presence, one per recipient, and those recipients
	// leave the entry (on both gateways, which see the plain presence pass);
	// a mirror stanza from the peer that takes the in table beyond it is
	// delivered and its entry dropped (give both gateways the same bound).
	MaxBytes int64
}

// DefaultMaxBytes is Config.MaxBytes when not set.
const DefaultMaxBytes = 64 << 20

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
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
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
	Absorbed         uint64 // presence stanzas from local servers carried inside a fan-out (not sent alone)
	Duplicates       uint64 // presence stanzas dropped: same content already delivered to that recipient
	FanoutSent       uint64 // mirror stanzas sent to the peer (changes)
	Expanded         uint64 // presence stanzas delivered locally from mirror stanzas
	ProbesAnswered   uint64 // local probes answered from the mirror
	ProbesForwarded  uint64 // local probes the mirror could not answer (sent to the peer)
	RefreshProbes    uint64 // answered probes also forwarded as a refresh
	Reprobes         uint64 // probes sent to local servers by the re-probe timer
	Confirms         uint64 // confirmations sent for refresh probes
	Synthesized      uint64 // unavailable synthesized (time-out, bare unavailable, resync)
	Expired          uint64 // entries removed by time-out
	Revoked          uint64 // recipients removed by unsubscribe/unsubscribed/error
	Spoofed          uint64 // stanzas from local servers carrying the mirror namespace (dropped)
	Full             uint64 // presence passed through because a table was full
	FullBytes        uint64 // fan-outs sent as plain presence, or mirror stanzas not kept, because a table would exceed MaxBytes
	Unmirrored       uint64 // recipients that left an in entry because the peer sent them plain presence (its table was at MaxBytes)
	SyncSent         uint64 // digests sent
	SyncMatched      uint64 // digests received that matched
	SyncRepaired     uint64 // entries re-sent after a digest mismatch
	CapsHits         uint64 // disco#info answered from the caps cache
	CapsMisses       uint64 // disco#info for an unknown or unverified caps ver (forwarded)
	CapsCached       uint64 // disco#info results verified and cached
	CapsBadHash      uint64 // disco#info results whose hash did not match the ver
	CapsRefused      uint64 // disco#info results refused by the XEP-0115 §5.4 checks ('<' in a value, duplicates, bad forms, unhashed content): not cached
	CapsUnverifiable uint64 // disco#info results with no known hash algorithm for their ver (or queries beyond maxCapsPending): not cached
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
	strs := newInterner()
	return &Mirror{
		cfg:         cfg,
		now:         now,
		out:         newTable(strs),
		in:          newTable(strs),
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
	m.emitAction(d, d == ToLink, name, from, to, typ, id, inner)
}

// emitAction is emit with the Mirror mark given.
func (m *Mirror) emitAction(d Dest, mirror bool, name, from, to, typ, id, inner string) {
	m.actions = append(m.actions, Action{Dest: d, Mirror: mirror, Stanza: Stanza{
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
			c.probed, c.confirmed = stampOf(now), nil
		}
	case "unsubscribe", "error":
		m.revoke(&m.out, to.bare(), from.bare())
	case "unsubscribed":
		m.revoke(&m.in, from.bare(), to.bare())
	case "":
		// Plain presence from a contact resource to a bare JID: the peer's
		// table was at MaxBytes (see Config.MaxBytes), and the recipient
		// left the entry there; it does here too.
		if from.res != "" && to.res == "" && to.local != "" {
			if e := m.in.get(from.bare(), from.res); e != nil && m.in.delRcpt(e, to.bare()) {
				m.c.Unmirrored++
				m.dirty = true
				if m.in.nrcpt(e) == 0 {
					m.in.del(from.bare(), from.res)
				}
			}
		}
	}
	return false
}
