package presencebench

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// Sizes of the scenario (issue 7, item 4).
type sizes struct {
	contacts    int // contacts on b.test of the one user u@a.test
	storm       int // users on a.test in the login storm
	perStorm    int // contacts on b.test of each storm user
	stormSpan   time.Duration
	loginRuns   int // logins measured per mode (the first, then re-logins)
	stormRuns   int
	settleQuiet time.Duration
}

var full = sizes{contacts: 200, storm: 40, perStorm: 20, stormSpan: 10 * time.Second, loginRuns: 2, stormRuns: 1, settleQuiet: 3 * time.Second}

const pw = "pw"

// TestPresenceBench is `make presence-bench`: real Prosody on both sides,
// direct S2S over the link emulator against the isthmus pair over the same
// emulated link. Set ISTHMUS_PRESENCE_BENCH=1 (the Makefile does);
// ISTHMUS_PRESENCE_PROFILES overrides the profiles (comma-separated);
// ISTHMUS_PRESENCE_MODES=pair (or direct) runs one mode only, to diagnose
// (its t.Logf lines, with -v, show what crossed the link in each phase).
func TestPresenceBench(t *testing.T) {
	if os.Getenv("ISTHMUS_PRESENCE_BENCH") == "" {
		t.Skip("set ISTHMUS_PRESENCE_BENCH=1 (make presence-bench)")
	}
	profiles := []string{"vhf-9600", "bgan-64k"}
	if p := os.Getenv("ISTHMUS_PRESENCE_PROFILES"); p != "" {
		profiles = strings.Split(p, ",")
	}
	runBench(t, full, profiles, os.Stdout)
}

// TestPresenceEndToEnd is the small version that `make test` runs: 20
// contacts, 5 storm users, bgan-64k; it checks that the pair delivers all
// presence at login, answers the probes from the mirror, and spends fewer
// bytes than direct S2S.
func TestPresenceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real Prosody")
	}
	s := sizes{contacts: 20, storm: 5, perStorm: 4, stormSpan: time.Second, loginRuns: 2, stormRuns: 1, settleQuiet: time.Second}
	res := runBench(t, s, []string{"bgan-64k"}, io.Discard)
	r := res[0]
	if r.pair.loginMS[1] > 1000 {
		t.Errorf("re-login through the pair took %d ms", r.pair.loginMS[1])
	}
	if r.pair.stormBytes >= r.direct.stormBytes {
		t.Errorf("storm bytes: pair %d >= direct %d", r.pair.stormBytes, r.direct.stormBytes)
	}
	if r.probesAnswered < int64(s.contacts) {
		t.Errorf("probes answered from the mirror: %d, want >= %d", r.probesAnswered, s.contacts)
	}
}

type modeResult struct {
	loginMS     []int64 // per login run
	loginBytes  []int64
	logoutBytes int64
	stormBytes  int64
	stormMS     int64
}

type profileResult struct {
	profile        string
	direct, pair   modeResult
	probesAnswered int64
}

func contactName(j int) string { return fmt.Sprintf("c%03d", j) }
func stormName(i int) string   { return fmt.Sprintf("s%02d", i) }

// stormContacts are the contacts of storm user i.
func stormContacts(s sizes, i int) []int {
	var l []int
	for k := 0; k < s.perStorm; k++ {
		l = append(l, (i*(s.contacts/max(s.storm, 1))+k*7)%s.contacts)
	}
	sort.Ints(l)
	return dedup(l)
}

func dedup(l []int) []int {
	var out []int
	for i, v := range l {
		if i == 0 || v != l[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func runBench(t *testing.T, s sizes, profiles []string, w io.Writer) []profileResult {
	prosodytest.Require(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// Rosters, symmetric, subscription both.
	rosA := map[string][]prosodytest.RosterItem{}
	rosB := map[string][]string{}
	var all []string
	for j := 0; j < s.contacts; j++ {
		all = append(all, contactName(j)+"@b.test")
		rosB[contactName(j)] = append(rosB[contactName(j)], "u@a.test")
	}
	rosA["u"] = prosodytest.Both(all...)
	for i := 0; i < s.storm; i++ {
		var l []string
		for _, j := range stormContacts(s, i) {
			l = append(l, contactName(j)+"@b.test")
			rosB[contactName(j)] = append(rosB[contactName(j)], stormName(i)+"@a.test")
		}
		rosA[stormName(i)] = prosodytest.Both(l...)
	}
	rosBItems := map[string][]prosodytest.RosterItem{}
	for u, l := range rosB {
		rosBItems[u] = prosodytest.Both(l...)
	}

	swA, swB := newSwitch(t, ctx), newSwitch(t, ctx)
	pa := prosodytest.Start(t, prosodytest.Options{Domain: "a.test", Users: map[string]string{"u": pw},
		Overrides: map[string]string{"b.test": swA.addr()}, Rosters: rosA, LogLevel: "warn"})
	pb := prosodytest.Start(t, prosodytest.Options{Domain: "b.test", Users: map[string]string{contactName(0): pw},
		Overrides: map[string]string{"a.test": swB.addr()}, Rosters: rosBItems, LogLevel: "warn"})
	for i := 0; i < s.storm; i++ {
		writeAccount(t, pa, stormName(i))
	}
	for j := 1; j < s.contacts; j++ {
		writeAccount(t, pb, contactName(j))
	}
	// The contacts come online (their presence crosses later, per mode).
	swA.set(pb.S2SAddr)
	swB.set(pa.S2SAddr)
	contacts := make([]*prosodytest.Client, s.contacts)
	for j := range contacts {
		c, err := prosodytest.Dial(ctx, t, pb, contactName(j), pw)
		if err != nil {
			t.Fatal(err)
		}
		contacts[j] = c
		go drain(ctx, c)
	}
	var results []profileResult
	for _, name := range profiles {
		prof, ok := emu.Lookup(name)
		if !ok {
			t.Fatalf("unknown profile %q", name)
		}
		r := profileResult{profile: name}
		modes := []string{"direct", "pair"}
		if m := os.Getenv("ISTHMUS_PRESENCE_MODES"); m != "" {
			modes = strings.Split(m, ",") // for diagnosis; the table needs both
		}
		for _, mode := range modes {
			mr, answered := runMode(t, ctx, s, prof, mode, pa, pb, swA, swB, contacts)
			if mode == "direct" {
				r.direct = mr
			} else {
				r.pair, r.probesAnswered = mr, answered
			}
		}
		results = append(results, r)
	}
	report(w, s, results)
	return results
}

// runMode measures one profile in one mode: "direct" (Prosody to Prosody
// through the emulator) or "pair" (through both gateways and the emulated
// link).
func runMode(t *testing.T, ctx context.Context, s sizes, prof emu.Profile, mode string,
	pa, pb *prosodytest.Server, swA, swB *sw, contacts []*prosodytest.Client) (modeResult, int64) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bytes func() int64
	var quiet func() bool
	var ga, gb *gateway.Gateway
	var wg sync.WaitGroup
	defer func() {
		cancel()
		swA.set("")
		swB.set("")
		wg.Wait()
	}()
	if mode == "direct" {
		rAB, rBA := &emu.Relay{Profile: prof, Seed: 1}, &emu.Relay{Profile: prof, Seed: 2}
		lnAB, lnBA := listen(t), listen(t)
		wg.Add(2)
		go func() { defer wg.Done(); rAB.ServeTCP(mctx, lnAB, pb.S2SAddr) }()
		go func() { defer wg.Done(); rBA.ServeTCP(mctx, lnBA, pa.S2SAddr) }()
		swA.set(lnAB.Addr().String())
		swB.set(lnBA.Addr().String())
		bytes = func() int64 { return relayWire(rAB.Stats()) + relayWire(rBA.Stats()) }
		quiet = func() bool { return relayIdle(rAB.Stats()) && relayIdle(rBA.Stats()) }
	} else {
		pc, err := gateway.NewPairConfig(map[string]string{"a.test": pa.S2SAddr}, map[string]string{"b.test": pb.S2SAddr}, "presence-bench-secret")
		if err != nil {
			t.Fatal(err)
		}
		pc.A.Link.RateBPS, pc.B.Link.RateBPS = prof.RateBPS, prof.RateBPS
		l := emu.NewLink(prof, 3)
		defer l.Close()
		gb, err = gateway.New(pc.B, gateway.Options{PrivateKey: pc.KeyB, LinkListener: l.Listen(), Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		ga, err = gateway.New(pc.A, gateway.Options{PrivateKey: pc.KeyA, LinkDial: l.Dial, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); gb.Run(mctx) }()
		go func() { defer wg.Done(); ga.Run(mctx) }()
		swA.set(ga.S2SAddr().String())
		swB.set(gb.S2SAddr().String())
		bytes = func() int64 {
			a := ga.Snapshot()
			return int64(a.Out.WireBytes + a.In.WireBytes)
		}
		quiet = func() bool {
			a, b := ga.Snapshot(), gb.Snapshot()
			return a.Link.Waiting+a.Link.Unacked+b.Link.Waiting+b.Link.Unacked == 0
		}
	}
	// diag logs what crossed the link in pair mode, for finding out where
	// the bytes go.
	diag := func(phase string) {
		if ga == nil {
			return
		}
		for _, g := range []*gateway.Gateway{ga, gb} {
			sn := g.Snapshot()
			c, out, in, _ := g.PresenceCounters()
			t.Logf("%s %s %s: out %v raw=%d link=%d wire=%d; in %v raw=%d link=%d wire=%d; mirror out=%d in=%d %+v",
				prof.Name, phase, sn.Name, sn.Out.Stanzas, sn.Out.RawBytes, sn.Out.LinkBytes, sn.Out.WireBytes,
				sn.In.Stanzas, sn.In.RawBytes, sn.In.LinkBytes, sn.In.WireBytes, out, in, c)
		}
	}
	settle := func(limit time.Duration) {
		deadline := time.Now().Add(limit)
		last, since := bytes(), time.Now()
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			if b := bytes(); b != last || !quiet() {
				last, since = b, time.Now()
			} else if time.Since(since) >= s.settleQuiet {
				return
			}
		}
		t.Logf("%s %s: not quiet after %v", prof.Name, mode, limit)
	}

	// The contacts (already online) change presence: varied show, status
	// and caps, broadcast to their subscribers on a.test.
	for j, c := range contacts {
		if err := sendVaried(ctx, c, j, mode); err != nil {
			t.Fatal(err)
		}
	}
	settle(20 * time.Minute)
	t.Logf("%s %s: contacts settled, %d bytes", prof.Name, mode, bytes())
	diag("settled")

	var mr modeResult
	for run := 0; run < s.loginRuns; run++ {
		u, err := prosodytest.Dial(ctx, t, pa, "u", pw)
		if err != nil {
			t.Fatal(err)
		}
		b0 := bytes()
		t0 := time.Now()
		if err := u.SendPresence(ctx, "", "online"); err != nil {
			t.Fatal(err)
		}
		if err := waitContacts(ctx, u, s.contacts, 20*time.Minute); err != nil {
			t.Fatalf("%s %s login %d: %v", prof.Name, mode, run, err)
		}
		mr.loginMS = append(mr.loginMS, time.Since(t0).Milliseconds())
		t.Logf("%s %s: login %d complete in %v", prof.Name, mode, run, time.Since(t0))
		settle(20 * time.Minute)
		mr.loginBytes = append(mr.loginBytes, bytes()-b0)
		diag(fmt.Sprintf("login %d", run))
		b1 := bytes()
		if err := u.SendUnavailable(ctx); err != nil {
			t.Fatal(err)
		}
		u.Close()
		settle(20 * time.Minute)
		mr.logoutBytes += bytes() - b1
	}

	// The login storm.
	for run := 0; run < s.stormRuns; run++ {
		users := make([]*prosodytest.Client, s.storm)
		for i := range users {
			c, err := prosodytest.Dial(ctx, t, pa, stormName(i), pw)
			if err != nil {
				t.Fatal(err)
			}
			users[i] = c
		}
		b0 := bytes()
		t0 := time.Now()
		var sg sync.WaitGroup
		errs := make(chan error, s.storm)
		for i, c := range users {
			sg.Add(1)
			go func() {
				defer sg.Done()
				time.Sleep(time.Duration(i) * s.stormSpan / time.Duration(s.storm))
				if err := c.SendPresence(ctx, "", "storm"); err != nil {
					errs <- err
					return
				}
				if err := waitContacts(ctx, c, len(stormContacts(s, i)), 30*time.Minute); err != nil {
					errs <- fmt.Errorf("%s: %w", stormName(i), err)
				}
			}()
		}
		sg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s %s storm: %v", prof.Name, mode, err)
		}
		mr.stormMS = time.Since(t0).Milliseconds()
		settle(30 * time.Minute)
		mr.stormBytes = bytes() - b0
		diag("storm")
		for _, c := range users {
			c.SendUnavailable(ctx)
			c.Close()
		}
		settle(30 * time.Minute)
	}
	var answered int64
	if ga != nil {
		if c, _, _, ok := ga.PresenceCounters(); ok {
			answered = int64(c.ProbesAnswered)
		}
	}
	t.Logf("%s %s: %+v", prof.Name, mode, mr)
	return mr, answered
}

// relayWire is what a relay carried in both directions, with the 52 bytes of
// TCP/IP header per segment and per delayed ACK (one per two segments) that
// the gateway's wire accounting adds too.
func relayWire(s emu.Stats) int64 {
	b := s.AB.DeliveredBytes + s.BA.DeliveredBytes
	seg := s.AB.DeliveredUnits + s.BA.DeliveredUnits
	return b + 52*seg + 52*(seg/2)
}

func relayIdle(s emu.Stats) bool {
	return s.AB.QueuedBytes == 0 && s.BA.QueuedBytes == 0 && s.AB.InFlight == 0 && s.BA.InFlight == 0
}

var shows = []string{"", "away", "xa", "dnd", "chat"}
var clients = []struct{ node, ver string }{
	{"http://conversations.im", "Ynoh+0ZfVv1Pd2X2ERSdp+aTJgs="},
	{"https://gajim.org", "pGZpjMR7hzdSHKOj0iHXLqE+Igw="},
	{"https://dino.im", "4xuPTP5sw/3PFfZBM9pz66TmOdY="},
}

// sendVaried sends contact j's presence: show, status and caps vary by j;
// the status names the mode so that each mode's broadcast is a change.
func sendVaried(ctx context.Context, c *prosodytest.Client, j int, mode string) error {
	var parts []xml.TokenReader
	if sh := shows[j%len(shows)]; sh != "" {
		parts = append(parts, text("show", sh))
	}
	parts = append(parts, text("status", fmt.Sprintf("%s watch %d", mode, j%7)))
	cl := clients[j%len(clients)]
	parts = append(parts, xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: "http://jabber.org/protocol/caps", Local: "c"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "hash"}, Value: "sha-1"}, {Name: xml.Name{Local: "node"}, Value: cl.node}, {Name: xml.Name{Local: "ver"}, Value: cl.ver}},
	}))
	return c.Session().Send(ctx, stanza.Presence{}.Wrap(xmlstream.MultiReader(parts...)))
}

func text(name, s string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: xml.Name{Local: name}})
}

// waitContacts waits until c has available presence from n distinct bare
// JIDs of b.test.
func waitContacts(ctx context.Context, c *prosodytest.Client, n int, limit time.Duration) error {
	seen := map[string]bool{}
	tm := time.NewTimer(limit)
	defer tm.Stop()
	for len(seen) < n {
		select {
		case p := <-c.Presences():
			if p.Type == "" && strings.Contains(p.From, "@b.test") {
				bare, _, _ := strings.Cut(p.From, "/")
				seen[bare] = true
			}
		case <-tm.C:
			return fmt.Errorf("presence of %d of %d contacts after %v", len(seen), n, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func drain(ctx context.Context, c *prosodytest.Client) {
	for {
		select {
		case <-c.Presences():
		case <-c.Messages():
		case <-ctx.Done():
			return
		case <-c.Done():
			return
		}
	}
}

// writeAccount stores user's SCRAM-SHA-1 credentials (password pw) the way
// Prosody's internal_hashed does, instead of a prosodyctl run per user.
func writeAccount(t *testing.T, s *prosodytest.Server, user string) {
	salt := "isthmus-bench-salt"
	iter := 4096
	salted, err := pbkdf2.Key(sha1.New, pw, []byte(salt), iter, sha1.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha1.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	ck := mac(salted, "Client Key")
	stored := sha1.Sum(ck)
	server := mac(salted, "Server Key")
	path := strings.Replace(prosodytest.RosterPath(filepath.Join(s.Dir, "data"), s.Domain, user), string(filepath.Separator)+"roster"+string(filepath.Separator), string(filepath.Separator)+"accounts"+string(filepath.Separator), 1)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("return {\n\t[\"server_key\"] = %q;\n\t[\"iteration_count\"] = %d;\n\t[\"salt\"] = %q;\n\t[\"stored_key\"] = %q;\n};\n",
		hex.EncodeToString(server), iter, salt, hex.EncodeToString(stored[:]))
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func median(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(w io.Writer, s sizes, rs []profileResult) {
	fmt.Fprintf(w, "\npresence at login: u@a.test with %d contacts on b.test; storm: %d users x %d contacts within %v\n\n", s.contacts, s.storm, s.perStorm, s.stormSpan)
	fmt.Fprintf(w, "%-10s %-7s %12s %14s %13s %13s %12s %12s\n", "profile", "mode", "login ms", "relogin ms", "login bytes", "logout bytes", "storm bytes", "storm ms")
	for _, r := range rs {
		for _, m := range []struct {
			name string
			r    modeResult
		}{{"direct", r.direct}, {"isthmus", r.pair}} {
			last := func(v []int64) int64 {
				if len(v) < 2 {
					return -1
				}
				return v[len(v)-1]
			}
			if len(m.r.loginMS) == 0 {
				continue // mode not run (ISTHMUS_PRESENCE_MODES)
			}
			fmt.Fprintf(w, "%-10s %-7s %12d %14d %13d %13d %12d %12d\n", r.profile, m.name, m.r.loginMS[0], last(m.r.loginMS), median(m.r.loginBytes), m.r.logoutBytes, m.r.stormBytes, m.r.stormMS)
		}
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		d, p := median(r.direct.loginMS), median(r.pair.loginMS)
		fmt.Fprintf(w, "login_presence_ms profile=%s direct=%d isthmus=%d speedup=%.1f\n", r.profile, d, p, float64(d)/float64(max(p, 1)))
		fmt.Fprintf(w, "login_storm_link_bytes profile=%s direct=%d isthmus=%d ratio=%.1f\n", r.profile, r.direct.stormBytes, r.pair.stormBytes, float64(r.direct.stormBytes)/float64(max(r.pair.stormBytes, 1)))
	}
}
