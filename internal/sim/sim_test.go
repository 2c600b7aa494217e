package sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type runResult struct {
	a, b       *Server
	transcript []string // every stanza in the order produced, prefixed by side
	bytes      [2]int   // raw bytes per direction
	stanzas    [2]int   // stanza count per direction
	kinds      [2]map[string]int
	end        time.Time
}

// runPair connects a and b directly (runBackToBack) and checks every
// stanza produced.
func runPair(t testing.TB, sc Scenario, dur, delay time.Duration) *runResult {
	t.Helper()
	a, b := NewPair(sc)
	res := &runResult{a: a, b: b, kinds: [2]map[string]int{{}, {}}}
	res.end = runBackToBack(a, b, t0, dur, delay, func(dir int, _ time.Time, raw []byte) {
		from, to := a, b
		if dir == B2A {
			from, to = b, a
		}
		checkStanza(t, raw, from.Domain(), to.Domain())
		res.transcript = append(res.transcript, from.Domain()+" "+string(raw))
		res.bytes[dir] += len(raw)
		res.stanzas[dir]++
		res.kinds[dir][kind(raw)]++
	})
	return res
}

// kind names a stanza for the traffic mix: element, type, first child.
func kind(raw []byte) string {
	n, err := parseStanza(raw)
	if err != nil {
		return "bad"
	}
	k := n.XMLName.Local + "/" + n.attr("type")
	if len(n.Nodes) > 0 && n.XMLName.Local != "presence" {
		k += "/" + n.Nodes[0].XMLName.Local
	}
	return k
}

func checkStanza(t testing.TB, raw []byte, fromDomain, toDomain string) {
	t.Helper()
	n, err := parseStanza(raw)
	if err != nil {
		t.Fatalf("stanza does not parse: %v: %s", err, raw)
	}
	if n.XMLName.Space != "" {
		t.Fatalf("top element has a namespace %q: %s", n.XMLName.Space, raw)
	}
	switch n.XMLName.Local {
	case "message", "presence", "iq":
	default:
		t.Fatalf("not a stanza: %s", raw)
	}
	from, ok1 := parseJID(n.attr("from"))
	to, ok2 := parseJID(n.attr("to"))
	if !ok1 || !ok2 || from.domain != fromDomain || to.domain != toDomain {
		t.Fatalf("bad addresses (want %s -> %s): %s", fromDomain, toDomain, raw)
	}
	// Only one top element.
	d := xml.NewDecoder(bytes.NewReader(raw))
	depth, tops := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				tops++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if tops != 1 {
		t.Fatalf("%d top elements: %s", tops, raw)
	}
}

func TestPingPong60s(t *testing.T) {
	const delay = 300 * time.Millisecond
	res := runPair(t, DefaultScenario(), 60*time.Second, delay)
	sum := res.a.Tracker().Summary()
	t.Logf("\n%v", sum)
	for side, name := range []string{"a2b", "b2a"} {
		bps := float64(res.bytes[side]) / 60
		t.Logf("%s: %d stanzas, %d bytes, %.0f B/s, %.0f B/stanza, mix %v",
			name, res.stanzas[side], res.bytes[side], bps, float64(res.bytes[side])/float64(res.stanzas[side]), res.kinds[side])
		if bps < 1500 || bps > 8000 {
			t.Errorf("%s: %.0f B/s of raw XML, want 1500..8000", name, bps)
		}
	}
	for name, d := range map[string]DirSummary{"a2b": sum.A2B, "b2a": sum.B2A} {
		if d.Sent < 10 {
			t.Errorf("%s: only %d chat messages in a minute", name, d.Sent)
		}
		if d.Delivered != d.Sent || d.Lost != 0 || d.Duplicates != 0 || d.Reordered != 0 {
			t.Errorf("%s: not exactly once in order: %v", name, d)
		}
		if d.P50 != delay || d.Max != delay {
			t.Errorf("%s: latency p50=%v max=%v, want %v", name, d.P50, d.Max, delay)
		}
		if d.Probes == 0 || d.ProbesAnswered != d.Probes {
			t.Errorf("%s: probes answered %d of %d", name, d.ProbesAnswered, d.Probes)
		}
		if d.IQs == 0 || d.IQsAnswered != d.IQs {
			t.Errorf("%s: iqs answered %d of %d", name, d.IQsAnswered, d.IQs)
		}
	}
	for side, name := range []string{"a2b", "b2a"} {
		k := res.kinds[side]
		for _, want := range []string{"presence/probe", "presence/", "presence/unavailable", "message/chat/body", "message/chat/composing", "message/chat/received", "iq/get/query", "iq/result/query", "iq/get/ping"} {
			if k[want] == 0 {
				t.Errorf("%s: no %s stanza in a minute", name, want)
			}
		}
	}
	if st := res.a.Stats(); st.Dropped != 0 {
		t.Errorf("a dropped %d stanzas of b", st.Dropped)
	}
	if st := res.b.Stats(); st.Dropped != 0 {
		t.Errorf("b dropped %d stanzas of a", st.Dropped)
	}
}

func TestDeterministic(t *testing.T) {
	sc := DefaultScenario()
	r1 := runPair(t, sc, 30*time.Second, 100*time.Millisecond)
	r2 := runPair(t, sc, 30*time.Second, 100*time.Millisecond)
	if len(r1.transcript) == 0 {
		t.Fatal("no traffic")
	}
	if strings.Join(r1.transcript, "\n") != strings.Join(r2.transcript, "\n") {
		t.Fatal("same seed gave different stanzas")
	}
	sc.Seed = 2
	r3 := runPair(t, sc, 30*time.Second, 100*time.Millisecond)
	if strings.Join(r1.transcript, "\n") == strings.Join(r3.transcript, "\n") {
		t.Fatal("different seeds gave the same stanzas")
	}
}

func TestIntensityScales(t *testing.T) {
	lo, hi := DefaultScenario(), DefaultScenario()
	lo.Intensity, hi.Intensity = 0.5, 2
	rl := runPair(t, lo, 2*time.Minute, 0)
	rh := runPair(t, hi, 2*time.Minute, 0)
	l, h := rl.bytes[A2B]+rl.bytes[B2A], rh.bytes[A2B]+rh.bytes[B2A]
	t.Logf("2 min: intensity 0.5 -> %d B/s, 2 -> %d B/s", l/120, h/120)
	if h < 2*l {
		t.Errorf("intensity 2 gave %d bytes, 0.5 gave %d: want at least twice", h, l)
	}
}

// TestLongRun checks that sessions come and go and the accounting holds
// over a longer stretch.
func TestLongRun(t *testing.T) {
	res := runPair(t, DefaultScenario(), 10*time.Minute, 2*time.Second)
	sum := res.a.Tracker().Summary()
	for _, d := range []DirSummary{sum.A2B, sum.B2A} {
		if d.Delivered != d.Sent || d.Duplicates != 0 || d.Reordered != 0 || d.IQsAnswered != d.IQs || d.ProbesAnswered != d.Probes {
			t.Errorf("accounting off: %v", d)
		}
	}
	logins := res.kinds[A2B]["presence/probe"] / DefaultScenario().Contacts
	if logins < 15 {
		t.Errorf("only %d logins on a.test in 10 minutes", logins)
	}
	for _, s := range []*Server{res.a, res.b} {
		if n := s.Online(); n == 0 || n == len(s.users) {
			t.Errorf("%s: %d of %d online after 10 min", s.Domain(), n, len(s.users))
		}
	}
}

func TestCapsVerMatchesDisco(t *testing.T) {
	for _, c := range clientVersions {
		if got := capsVer(c.category, c.typ, c.name, c.features); got != c.ver {
			t.Errorf("%s: ver %s, recomputed %s", c.name, c.ver, got)
		}
		if len(c.ver) != 28 {
			t.Errorf("%s: ver %q is not base64 SHA-1", c.name, c.ver)
		}
	}
	// Known vector from XEP-0115 §5.2.
	if v := capsVer("client", "pc", "Exodus 0.9.1", []string{
		"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc",
	}); v != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Errorf("XEP-0115 example: got %s", v)
	}
}

// handleOne feeds b (the server of b.test) one stanza after both servers
// have been started and run for a while.
func newStarted(t *testing.T) (a, b *Server, now time.Time) {
	a, b = NewPair(DefaultScenario())
	now = t0
	a.Step(now)
	b.Step(now)
	now = now.Add(15 * time.Second) // initial logins done
	a.Step(now)
	b.Step(now)
	return a, b, now
}

func onlineUser(s *Server, online bool) *user {
	for _, u := range s.users {
		if u.online == online && len(u.contacts) > 0 {
			return u
		}
	}
	return nil
}

func TestHandleReplies(t *testing.T) {
	a, b, now := newStarted(t)
	on, off := onlineUser(b, true), onlineUser(b, false)
	if on == nil || off == nil {
		t.Fatal("need an online and an offline user on b")
	}
	contact := on.contacts[0] // a user of a.test
	stranger := "nobody@a.test"
	_ = a

	cases := []struct {
		name, in string
		want     []string // substrings of the single reply; nil: no reply
	}{
		{"probe online", fmt.Sprintf(`<presence type='probe' from='%s' to='%s'/>`, contact, on.bare),
			[]string{"from='" + on.full + "'", "to='" + contact + "'", "<delay xmlns='urn:xmpp:delay'", "ver='" + on.client.ver + "'"}},
		{"probe offline", fmt.Sprintf(`<presence type='probe' from='%s' to='%s'/>`, off.contacts[0], off.bare),
			[]string{"type='unavailable'", "from='" + off.bare + "'"}},
		{"probe stranger", fmt.Sprintf(`<presence type='probe' from='%s' to='%s'/>`, stranger, on.bare),
			[]string{"type='unsubscribed'"}},
		{"probe unknown user", fmt.Sprintf(`<presence type='probe' from='%s' to='ghost@b.test'/>`, contact),
			[]string{"type='unsubscribed'", "from='ghost@b.test'"}},
		{"server ping", `<iq type='get' id='p1' from='a.test' to='b.test'><ping xmlns='urn:xmpp:ping'/></iq>`,
			[]string{"type='result'", "id='p1'", "from='b.test'", "to='a.test'"}},
		{"client ping", fmt.Sprintf(`<iq type='get' id='p2' from='%s/x' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, contact, on.full),
			[]string{"type='result'", "id='p2'", "from='" + on.full + "'"}},
		{"ping offline resource", fmt.Sprintf(`<iq type='get' id='p3' from='%s/x' to='%s/gone'><ping xmlns='urn:xmpp:ping'/></iq>`, contact, on.bare),
			[]string{"type='error'", "id='p3'", "service-unavailable"}},
		{"iq unknown user", `<iq type='get' id='p4' from='x@a.test/r' to='ghost@b.test'><vCard xmlns='vcard-temp'/></iq>`,
			[]string{"type='error'", "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>", "from='ghost@b.test'", "to='x@a.test/r'"}},
		{"iq unknown ns", `<iq type='get' id='p5' from='a.test' to='b.test'><query xmlns='urn:example:nope'/></iq>`,
			[]string{"type='error'", "service-unavailable"}},
		{"disco wrong node", fmt.Sprintf(`<iq type='get' id='p6' from='%s/x' to='%s'><query xmlns='http://jabber.org/protocol/disco#info' node='http://x#y'/></iq>`, contact, on.full),
			[]string{"type='error'", "item-not-found"}},
		{"disco caps node", fmt.Sprintf(`<iq type='get' id='p7' from='%s/x' to='%s'><query xmlns='http://jabber.org/protocol/disco#info' node='%s#%s'/></iq>`, contact, on.full, on.client.node, on.client.ver),
			[]string{"type='result'", "<identity category='client'", "<feature var='urn:xmpp:receipts'/>"}},
		{"vcard", fmt.Sprintf(`<iq type='get' id='p8' from='%s/x' to='%s'><vCard xmlns='vcard-temp'/></iq>`, contact, on.bare),
			[]string{"type='result'", "<FN>"}},
		{"iq without payload", `<iq type='get' id='p9' from='a.test' to='b.test'/>`,
			[]string{"type='error'", "bad-request"}},
		{"message to unknown user", `<message type='chat' id='m1' from='x@a.test/r' to='ghost@b.test'><body>hi</body></message>`,
			[]string{"type='error'", "service-unavailable", "id='m1'"}},
		{"message online", fmt.Sprintf(`<message type='chat' id='m2' from='%s/r' to='%s'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>`, contact, on.bare),
			[]string{"<received xmlns='urn:xmpp:receipts' id='m2'/>", "from='" + on.full + "'", "to='" + contact + "/r'"}},
		{"message offline", fmt.Sprintf(`<message type='chat' id='m3' from='%s/r' to='%s'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>`, off.contacts[0], off.bare), nil},
		{"error not answered", `<iq type='error' id='zz' from='a.test' to='b.test'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, nil},
		{"message error not answered", `<message type='error' id='zz' from='x@a.test' to='ghost@b.test'/>`, nil},
		{"not for us", `<message type='chat' id='m4' from='x@a.test' to='y@c.test'><body>hi</body></message>`, nil},
		{"spoofed from", `<message type='chat' id='m5' from='x@b.test' to='alice@b.test'><body>hi</body></message>`, nil},
		{"garbage", `<<<`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := b.Handle(now, []byte(c.in))
			if c.want == nil {
				if len(out) != 0 {
					t.Fatalf("want no reply, got %q", out)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("want 1 reply, got %q", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out[0]), w) {
					t.Errorf("reply lacks %q: %s", w, out[0])
				}
			}
			if _, err := parseStanza(out[0]); err != nil {
				t.Errorf("reply does not parse: %v", err)
			}
		})
	}
	if len(off.offline) == 0 || off.offline[len(off.offline)-1].id != "m3" {
		t.Errorf("offline message not stored: %+v", off.offline)
	}
}

// TestOfflineReceiptsAtLogin: messages stored offline are acknowledged
// when the user logs in.
func TestOfflineReceiptsAtLogin(t *testing.T) {
	_, b, now := newStarted(t)
	off := onlineUser(b, false)
	from := off.contacts[0] + "/Conversations.zzzz"
	b.Handle(now, []byte(fmt.Sprintf(`<message type='chat' id='om1' from='%s' to='%s'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>`, from, off.bare)))
	out := b.login(now, off, nil)
	var found bool
	for _, raw := range out {
		if strings.Contains(string(raw), "<received xmlns='urn:xmpp:receipts' id='om1'/>") && strings.Contains(string(raw), "to='"+from+"'") {
			found = true
		}
	}
	if !found {
		t.Fatal("no receipt for the offline message at login")
	}
	if got := len(out); got != 2*len(off.contacts)+1 {
		t.Errorf("login produced %d stanzas, want probes+presences+1 receipt = %d", got, 2*len(off.contacts)+1)
	}
}

func TestTrackerDuplicatesAndReorder(t *testing.T) {
	tr := newTracker("a.test")
	from, _ := parseJID("alice@a.test/x")
	to, _ := parseJID("bob@b.test")
	tr.sent("1", from, to, t0)
	tr.sent("2", from, to, t0)
	tr.sent("3", from, to, t0)
	tr.delivered("2", t0.Add(time.Second))
	tr.delivered("1", t0.Add(2*time.Second)) // older than 2: reordered
	tr.delivered("2", t0.Add(3*time.Second)) // duplicate
	tr.delivered("nope", t0)
	s := tr.Summary()
	want := DirSummary{Sent: 3, Delivered: 2, Lost: 1, Duplicates: 1, Reordered: 1,
		P50: 2 * time.Second, P90: 2 * time.Second, P99: 2 * time.Second, Max: 2 * time.Second}
	if s.A2B != want {
		t.Errorf("a2b = %+v\nwant  %+v", s.A2B, want)
	}
	if s.B2A != (DirSummary{}) {
		t.Errorf("b2a = %+v, want zero", s.B2A)
	}
}

// TestSampleStanzas checks that the default scenario produces every kind of
// stanza the demo claims to show (its first sample of each kind is logged
// with -v), so that a change to the simulator that silently stops one kind
// fails here rather than skewing the demo's figures.
func TestSampleStanzas(t *testing.T) {
	res := runPair(t, DefaultScenario(), 2*time.Minute, 0)
	seen := map[string]bool{}
	for _, s := range res.transcript {
		raw := s[strings.IndexByte(s, ' ')+1:]
		k := kind([]byte(raw))
		if k == "bad" {
			t.Errorf("stanza does not parse: %s", s)
		}
		if !seen[k] {
			seen[k] = true
			t.Logf("%s", s)
		}
	}
	for _, want := range []string{
		"message/chat/body", "message/chat/composing", "message/chat/received",
		"presence/", "presence/probe", "presence/unavailable",
		"iq/get/ping", "iq/get/vCard", "iq/get/query", "iq/get/pubsub", "iq/result/",
	} {
		found := false
		for k := range seen {
			if strings.HasPrefix(k, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s stanza in 2 minutes of the default scenario; kinds seen: %v", want, slices.Sorted(maps.Keys(seen)))
		}
	}
}

func TestTrackerLatencyRing(t *testing.T) {
	var c dirCounters
	c.addLatency(time.Hour)
	for range maxSamples {
		c.addLatency(time.Second)
	}
	if len(c.latencies) != maxSamples {
		t.Fatalf("kept %d samples, want %d", len(c.latencies), maxSamples)
	}
	c.delivered = 1
	s := c.summary()
	if s.P99 != time.Second || s.Max != time.Hour {
		t.Errorf("p99=%v max=%v, want 1s (old sample overwritten) and 1h (all-time max)", s.P99, s.Max)
	}
}

func TestGenerateMatchesRun(t *testing.T) {
	var n int
	var got []string
	sum := Generate(DefaultScenario(), t0, 20*time.Second, 0, func(dir int, at time.Time, raw []byte) {
		n++
		got = append(got, string(raw))
	})
	res := runPair(t, DefaultScenario(), 20*time.Second, 0)
	if n == 0 || n != len(res.transcript) {
		t.Fatalf("Generate emitted %d stanzas, runPair %d", n, len(res.transcript))
	}
	if sum.A2B.Sent == 0 || sum.A2B.Delivered != sum.A2B.Sent {
		t.Errorf("summary: %v", sum)
	}
}

func TestRosterSymmetric(t *testing.T) {
	for _, sc := range []Scenario{
		DefaultScenario(),
		{UsersA: 5, UsersB: 30, Contacts: 8, Seed: 3},
		{UsersA: 30, UsersB: 4, Contacts: 8, Seed: 4},
		{UsersA: 60, UsersB: 60, Contacts: 3, Seed: 5},
	} {
		a, b := NewPair(sc)
		sc = sc.normalized()
		seen := map[string]bool{}
		for _, s := range []*Server{a, b} {
			other := b
			if s == b {
				other = a
			}
			for _, u := range s.users {
				if seen[u.bare] {
					t.Errorf("duplicate account %s", u.bare)
				}
				seen[u.bare] = true
				if len(u.contacts) == 0 {
					t.Errorf("%v: %s has no contacts", sc, u.bare)
				}
				for _, c := range u.contacts {
					j, _ := parseJID(c)
					cu := other.byLocal[j.local]
					if j.domain != other.domain || cu == nil || !cu.contactSet[u.bare] {
						t.Errorf("%v: %s has %s, not the other way round", sc, u.bare, c)
					}
				}
			}
		}
		if sc.UsersA == sc.UsersB {
			for _, u := range append(append([]*user{}, a.users...), b.users...) {
				if len(u.contacts) != sc.Contacts {
					t.Errorf("%v: %s has %d contacts, want %d", sc, u.bare, len(u.contacts), sc.Contacts)
				}
			}
		}
		if on := a.users; len(on) != sc.UsersA {
			t.Errorf("a has %d users, want %d", len(on), sc.UsersA)
		}
	}
}
