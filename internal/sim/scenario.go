package sim

import (
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Scenario describes the two simulated servers and their users.
type Scenario struct {
	DomainA, DomainB string // "a.test", "b.test"
	UsersA, UsersB   int    // accounts per side (default 20 each)
	// Contacts is the number of cross-link contacts per user (default 8):
	// a user of A has Contacts users of B in its roster with subscription
	// both, and vice versa (the relation is symmetric).
	Contacts int
	Seed     int64
	// Intensity scales every event rate; 1.0 (the default, also used for
	// zero or negative values) gives roughly 2-4 KB/s of raw XML per
	// direction for 20 users a side.
	Intensity float64
}

// DefaultScenario is the demo: a.test and b.test, 20 users each, 8
// contacts per user.
func DefaultScenario() Scenario {
	return Scenario{
		DomainA: "a.test", DomainB: "b.test",
		UsersA: 20, UsersB: 20, Contacts: 8,
		Seed: 1, Intensity: 1,
	}
}

func (sc Scenario) normalized() Scenario {
	d := DefaultScenario()
	if sc.DomainA == "" {
		sc.DomainA = d.DomainA
	}
	if sc.DomainB == "" {
		sc.DomainB = d.DomainB
	}
	sc.DomainA, sc.DomainB = strings.ToLower(sc.DomainA), strings.ToLower(sc.DomainB)
	if sc.UsersA <= 0 {
		sc.UsersA = d.UsersA
	}
	if sc.UsersB <= 0 {
		sc.UsersB = d.UsersB
	}
	if sc.Contacts <= 0 {
		sc.Contacts = d.Contacts
	}
	if !(sc.Intensity > 0) { // also catches NaN
		sc.Intensity = 1
	}
	return sc
}

// Mean intervals of the workload at Intensity 1.
const (
	meanOnline     = 150 * time.Second // session length
	meanOffline    = 150 * time.Second // time between sessions
	meanPresence   = 45 * time.Second  // between presence changes of an online user
	meanChat       = 20 * time.Second  // between conversations started by an online user
	meanClientPing = 300 * time.Second // between XEP-0199 pings from an online client
	serverPingGap  = 60 * time.Second  // server-to-server keepalive ping
	initialLogins  = 10 * time.Second  // users online at start log in within this window
	maxOffline     = 50                // stored offline messages per user; older ones are dropped
	maxPending     = 4096              // outstanding iq requests remembered
)

// NewPair builds the servers of both sides. They share one Tracker, and
// their rosters mirror each other. Neither is safe for concurrent use;
// each must be driven by one goroutine (the Tracker is shared safely).
func NewPair(sc Scenario) (a, b *Server) {
	sc = sc.normalized()
	tr := newTracker(sc.DomainA)
	a = newServer(sc, 0, tr)
	b = newServer(sc, 1, tr)

	// Cross roster: A_i is subscribed (both) to K consecutive users of a
	// seeded permutation of B, so every B user also gets about K contacts.
	r := rand.New(rand.NewPCG(uint64(sc.Seed), 0x5eed0f7057e75))
	permA := r.Perm(len(a.users))
	permB := r.Perm(len(b.users))
	na, nb := len(a.users), len(b.users)
	k := min(sc.Contacts, nb)
	for i := range na {
		ua := a.users[permA[i]]
		off := i * nb / na
		for j := range k {
			ub := b.users[permB[(off+j)%nb]]
			if ua.contactSet[ub.bare] {
				continue
			}
			ua.addContact(ub.bare)
			ub.addContact(ua.bare)
		}
	}
	return a, b
}

func newServer(sc Scenario, side int, tr *Tracker) *Server {
	s := &Server{
		intensity:  sc.Intensity,
		tr:         tr,
		byLocal:    make(map[string]*user),
		remote:     make(map[string]map[string]*remoteRes),
		capsKnown:  make(map[string]bool),
		photoKnown: make(map[string]bool),
		pending:    make(map[string]pendingIQ),
	}
	n := sc.UsersA
	s.domain, s.peer = sc.DomainA, sc.DomainB
	nameOff := 0
	if side == 1 {
		n = sc.UsersB
		s.domain, s.peer = sc.DomainB, sc.DomainA
		nameOff = 26
	}
	s.rng = rand.New(rand.NewPCG(uint64(sc.Seed), uint64(side+1)))
	for i := range n {
		k := (i + nameOff) % len(firstNames)
		local := firstNames[k]
		if round := (i + nameOff) / len(firstNames); round > 0 {
			local += strconv.Itoa(round + 1)
		}
		u := &user{
			local:      local,
			bare:       local + "@" + s.domain,
			name:       strings.ToUpper(local[:1]) + local[1:] + " " + surnames[s.rng.IntN(len(surnames))],
			client:     pickClient(s.rng),
			contactSet: make(map[string]bool),
		}
		u.resource = u.client.resource(s.rng)
		u.full = u.bare + "/" + u.resource
		if s.rng.IntN(100) < 85 {
			s.newPhoto(u)
		}
		s.users = append(s.users, u)
		s.byLocal[local] = u
	}
	for i, p := range s.rng.Perm(n) {
		s.users[p].startOnline = i < (n+1)/2
	}
	return s
}

// newPhoto gives u a new avatar: a few hundred bytes of "image" and their
// SHA-1, as vcard-temp:x:update and XEP-0084 announce it.
func (s *Server) newPhoto(u *user) {
	img := make([]byte, 300+s.rng.IntN(400))
	copy(img, "RIFF\x00\x00\x00\x00WEBPVP8 ")
	for i := 16; i < len(img); i++ {
		img[i] = byte(s.rng.Uint32())
	}
	sum := sha1.Sum(img)
	u.photo, u.photoHash = img, hex.EncodeToString(sum[:])
}
