package presence

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Realistic presence for the memory measurements: every contact has its
// own full JID and stanza id; show, priority and the caps element come from
// small sets (a few client versions); a third of the status texts are free
// text of each contact's own, the rest common phrases or none; each entry
// has three recipients among 20,000 users of the other domain.
var (
	memShows    = []string{"", "away", "dnd", "xa", "chat"}
	memPrios    = []string{"0", "1", "5", "10", "-1"}
	memStatuses = []string{"Away", "Busy", "In a meeting", "On the phone", "Working from home", "Lunch", "Be right back",
		"Do not disturb", "On holiday until Monday", "Driving", "Available", "At the office"}
	memClients = []string{"https://conversations.im", "https://gajim.org", "https://dino.im", "http://psi-im.org",
		"https://monal-im.org", "http://pidgin.im/", "https://poez.io", "https://siskin.im"}
)

func memVer(s string) string {
	h := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

// memPayload is the presence children of contact i.
func memPayload(i int) string {
	var b strings.Builder
	cl := memClients[i%len(memClients)]
	fmt.Fprintf(&b, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/>", cl, memVer(cl+fmt.Sprint(i%3)))
	fmt.Fprintf(&b, "<priority>%s</priority>", memPrios[i%len(memPrios)])
	if s := memShows[i/7%len(memShows)]; s != "" {
		fmt.Fprintf(&b, "<show>%s</show>", s)
	}
	switch k := i % 3; {
	case k == 0:
		fmt.Fprintf(&b, "<status>%s %s, back at %d:%02d</status>", []string{"Working on", "Reviewing", "Call with", "Reading"}[i%4], memRand(i, 5, 10), 8+i%10, i%60)
	case i/3%4 != 0:
		fmt.Fprintf(&b, "<status>%s</status>", memStatuses[i/11%len(memStatuses)])
	}
	return b.String()
}

// memRand is a random string of n letters and digits, the same for each
// (i, salt).
func memRand(i, salt, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(uint64(i), uint64(salt)))
	b := make([]byte, n)
	for j := range b {
		b[j] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

var memNames = []string{"anna", "bob", "carla", "dmitri", "emma", "farid", "grace", "hiro", "ines", "jonas", "kofi", "lena"}

// memContact is the full JID of contact i: a name and digits, a resource
// as clients make them.
func memContact(i int) string {
	res := []string{"phone", "laptop", "gajim." + memRand(i, 1, 8), "Conversations." + memRand(i, 2, 4)}[i%4]
	return fmt.Sprintf("%s.%s%d@b.test/%s", memNames[i%len(memNames)], strings.ToLower(memRand(i, 3, 3)), i, res)
}

// memID is the stanza id of contact i's presence.
func memID(i int) string { return memRand(i, 4, 12) }

func memRcpts(i int) []string {
	return []string{fmt.Sprintf("u%05d", (i*7)%20000), fmt.Sprintf("u%05d", (i*13+1)%20000), fmt.Sprintf("u%05d", (i*31+2)%20000)}
}

// fillIn fills the in table of m (side a) with n entries, as mirror stanzas
// from the peer.
func fillIn(tb testing.TB, m *Mirror, now time.Time, n int) {
	for i := 0; i < n; i++ {
		raw := fmt.Sprintf("<presence from='%s' to='a.test' id='%s'>%s<m xmlns='%s' add='%s'/></presence>",
			memContact(i), memID(i), memPayload(i), NS, strings.Join(memRcpts(i), " "))
		st := Stanza{Name: "presence", From: memContact(i), To: "a.test", Raw: []byte(raw)}
		if !m.FromPeer(now, st) {
			tb.Fatalf("mirror stanza %d not taken", i)
		}
		m.Actions()
	}
}

// fillOut fills the out table of m (side b) with n entries, as broadcasts
// from b's local server to three recipients each.
func fillOut(tb testing.TB, m *Mirror, now time.Time, n int) {
	for i := 0; i < n; i++ {
		for _, r := range memRcpts(i) {
			raw := fmt.Sprintf("<presence from='%s' to='%s@a.test' id='%s'>%s</presence>", memContact(i), r, memID(i), memPayload(i))
			st := Stanza{Name: "presence", From: memContact(i), To: r + "@a.test", Raw: []byte(raw)}
			if !m.FromLocal(now, st) {
				tb.Fatalf("presence %d not taken", i)
			}
		}
		if i%1000 == 999 || i == n-1 {
			m.FlushAll()
			m.Actions()
		}
	}
}

// rss returns the resident set size (VmRSS) after a GC that returns freed
// memory to the OS, so that it counts what the heap holds plus the
// runtime's overhead, not garbage awaiting collection; 0 where /proc is
// missing.
func rss() uint64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memoryPerEntry fills one table with n entries and returns the live heap,
// the state file bytes and the bytes counted towards Config.MaxBytes, per
// entry.
func memoryPerEntry(tb testing.TB, table string, n int) (heap, state, counted, rssPer float64) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	side := "a"
	if table == "out" {
		side = "b"
	}
	cfg := testConfig(side)
	cfg.MaxEntries = n
	before, rssBefore := heapAlloc(), rss()
	m, err := New(cfg, now)
	if err != nil {
		tb.Fatal(err)
	}
	m.SetLink(now, true)
	m.Actions()
	if table == "in" {
		fillIn(tb, m, now, n)
	} else {
		fillOut(tb, m, now, n)
	}
	after, rssAfter := heapAlloc(), rss()
	if o, i := m.Entries(); o+i != n {
		tb.Fatalf("%d+%d entries, want %d", o, i, n)
	}
	b, err := MarshalState(m.State())
	if err != nil {
		tb.Fatal(err)
	}
	runtime.KeepAlive(m)
	return float64(after-before) / float64(n), float64(len(b)) / float64(n), float64(m.in.bytes+m.out.bytes) / float64(n),
		(float64(rssAfter) - float64(rssBefore)) / float64(n)
}

// BenchmarkMirrorMemory reports the live heap (HeapAlloc after GC), the
// growth of RSS (after returning freed memory to the OS) and the
// state file bytes per entry of a table of 100,000 realistic entries (issue
// 10, defect 7). Run with -benchtime=1x.
func BenchmarkMirrorMemory(b *testing.B) {
	for _, table := range []string{"in", "out"} {
		b.Run(table, func(b *testing.B) {
			var heap, state, counted, rssPer float64
			for i := 0; i < b.N; i++ {
				heap, state, counted, rssPer = memoryPerEntry(b, table, 100000)
			}
			b.ReportMetric(heap, "heap-B/entry")
			b.ReportMetric(rssPer, "rss-B/entry")
			b.ReportMetric(state, "state-B/entry")
			b.ReportMetric(counted, "maxbytes-B/entry")
		})
	}
}

// TestMirrorMemory holds the figures of BenchmarkMirrorMemory on a smaller
// table: at most 512 bytes of live heap and 100 bytes of state file per
// entry (issue 10, defect 7).
func TestMirrorMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a table of 20,000 entries")
	}
	heap, state, _, _ := memoryPerEntry(t, "in", 20000)
	t.Logf("%.0f heap bytes, %.1f state bytes per entry", heap, state)
	if heap > 512 {
		t.Errorf("%.0f bytes of heap per entry, want at most 512", heap)
	}
	if state > 100 {
		t.Errorf("%.1f bytes of state file per entry, want at most 100", state)
	}
}
