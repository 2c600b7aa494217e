package compare

import (
	"sort"
	"sync"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
)

// recorder keeps the send time of every workload message (keyed by its
// body, which is unique) and the latency of each delivery to a client on
// the other side. Deliveries on the sender's own side (a MUC reflecting to
// local occupants) are counted but not timed.
type recorder struct {
	mu      sync.Mutex
	sent    map[string]sentMsg
	got     map[string]int // body → deliveries seen
	lat     [2]map[string][]time.Duration
	unknown int // messages received that the workload did not send
}

type sentMsg struct {
	at   time.Time
	side int
	kind string // "chat" or "groupchat"
}

func newRecorder() *recorder {
	r := &recorder{sent: map[string]sentMsg{}, got: map[string]int{}}
	for i := range r.lat {
		r.lat[i] = map[string][]time.Duration{}
	}
	return r
}

// sending notes body's send time; call it just before sending.
func (r *recorder) sending(body string, side int, kind string) {
	r.mu.Lock()
	r.sent[body] = sentMsg{at: time.Now(), side: side, kind: kind}
	r.mu.Unlock()
}

func (r *recorder) received(u *user, m prosodytest.Message) {
	if m.Body == "" {
		return // MUC subject, chat states, …
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sent[m.Body]
	if !ok {
		r.unknown++
		return
	}
	r.got[m.Body]++
	if s.side != u.side {
		r.lat[s.side][s.kind] = append(r.lat[s.side][s.kind], m.Received.Sub(s.at))
	}
}

// latencies returns the delivery latencies of messages of kind sent from
// side.
func (r *recorder) latencies(side int, kind string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat[side][kind]...)
}

// delivered returns how many times body has been delivered.
func (r *recorder) delivered(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[body]
}

// pct returns the p-th percentile (nearest rank) of d, 0 when empty.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}
