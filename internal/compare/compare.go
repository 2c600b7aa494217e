package compare

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/internal/ejabberdtest"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/internal/testpki"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// The two runs.
const (
	Direct = "direct"
	Pair   = "pair"
)

const (
	domainA = "a.test"            // Prosody
	domainB = "b.test"            // ejabberd
	mucB    = "conference.b.test" // ejabberd's MUC service
	room    = "lounge@" + mucB
)

// Options are one run's settings.
type Options struct {
	Profile  emu.Profile
	Duration time.Duration // length of the chat phase
	Interval time.Duration // each of the four users sends one chat message per Interval
	Logins   int           // re-logins timed per side
	NoIQ     bool          // skip the iq phase (the smoke test)
	Seed     int64         // the emulator's loss draws
	Quiet    time.Duration // a phase ends after the link has been idle this long; default 3s
	Logf     func(format string, args ...any)
}

// Phase is what crossed the radio during one part of the workload.
type Phase struct {
	Name     string
	AB, BA   int64 // bytes with headers (see air.Bytes)
	Duration time.Duration
}

// Result is one run's measurements. Index 0 is a→b (sent on a.test,
// received on b.test), 1 is b→a.
type Result struct {
	Mode      string
	Profile   string
	Air       [2]air
	Chat      [2][]time.Duration // chat message latencies
	Groupchat [2][]time.Duration // groupchat latencies to the occupants on the other side
	// Login[i] is presence at login in direction i: a user on the receiving
	// side logs in; the time until its client holds the presence of its
	// contact on the sending side.
	Login     [2][]time.Duration
	IQ        [2][]time.Duration // iq round trips, by the asker's side
	Phases    []Phase
	ChatSent  [2]int
	GroupSent [2]int
	Elapsed   time.Duration
}

// waitLimit bounds each wait of the workload; direct S2S at 2400 bit/s
// needs tens of seconds for TLS and dialback.
const waitLimit = 5 * time.Minute

// run starts Prosody (a.test) and ejabberd (b.test), joins them in mode
// Direct or Pair over one emulated link, runs the workload and returns what
// it measured. Everything it starts is stopped in t.Cleanup or on return.
func run(t *testing.T, mode string, o Options) Result {
	t.Helper()
	logf := o.Logf
	if logf == nil {
		logf = t.Logf
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	// Both servers at their default secure S2S settings (Prosody
	// s2s_require_encryption = true, ejabberd s2s_use_starttls: required),
	// the same in both runs, with certificates from a private CA that
	// every party trusts. In the pair run each gateway has a certificate
	// for the remote domains it stands in for (as in internal/interop).
	ca, err := testpki.NewCA("isthmus compare CA")
	must(t, err)
	dir := t.TempDir()
	issue := func(name string, domains ...string) testpki.Files {
		t.Helper()
		f, err := ca.WriteFiles(dir, name, domains...)
		must(t, err)
		return f
	}
	certA := issue("prosody", domainA)
	certB := issue("ejabberd", domainB, mucB)

	dns, err := ejabberdtest.StartDNS()
	must(t, err)
	t.Cleanup(func() { dns.Close() })
	lnA, lnB := listen(t), listen(t) // what a.test and b.test dial for the other domain
	dns.SetSRV(domainA, lnB.Addr().(*net.TCPAddr).Port)

	var eb *ejabberdtest.Server
	var ewg sync.WaitGroup
	ewg.Add(1)
	go func() { // ejabberd takes seconds to start: start both at once
		defer ewg.Done()
		eb = ejabberdtest.Start(t, ejabberdtest.Options{
			Domain:  domainB,
			MUC:     true,
			Users:   map[string]string{"bob": "pw-bob", "dave": "pw-dave"},
			DNSPort: dns.Port(),
			TLS:     certB,
			// ejabberd closes an S2S stream whose negotiation (STARTTLS,
			// authentication, the restarts) takes longer than
			// negotiation_timeout, default 30 s: at 2400 bit/s direct S2S
			// takes 20–30 s and failed that way. Both runs use 120 s.
			Extra: "negotiation_timeout: 120",
		})
	}()
	pa := prosodytest.Start(t, prosodytest.Options{
		Domain:    domainA,
		Users:     map[string]string{"alice": "pw-alice", "carol": "pw-carol"},
		Overrides: map[string]string{domainB: lnA.Addr().String(), mucB: lnA.Addr().String()},
		LogLevel:  "info",
		TLS:       prosodytest.TLSFiles{Cert: certA.Cert, Key: certA.Key, CA: certA.CA},
	})
	ewg.Wait()
	if eb == nil {
		t.FailNow() // ejabberdtest.Start failed (and said why) on its goroutine
	}

	r := newRadio(o.Profile, o.Seed)
	defer r.link.Close()
	if mode == Direct {
		r.relay(ctx, &wg, lnA, eb.S2SAddr, true)
		r.relay(ctx, &wg, lnB, pa.S2SAddr, false)
	} else {
		pc, err := gateway.NewPairConfig(map[string]string{domainA: pa.S2SAddr},
			map[string]string{domainB: eb.S2SAddr, mucB: eb.S2SAddr}, "compare-secret")
		must(t, err)
		// A stands in for b.test toward Prosody, B for a.test toward
		// ejabberd; both require STARTTLS. A verifies Prosody's
		// certificate and offers it SASL EXTERNAL; B has no CA file, so
		// ejabberd authenticates to it with dialback, verified over TLS.
		for c, f := range map[*config.Config]testpki.Files{pc.A: issue("gateway-a", domainB, mucB), pc.B: issue("gateway-b", domainA)} {
			c.S2S.CertFile, c.S2S.KeyFile = f.Cert, f.Key
			c.S2S.RequireTLS = true
			c.Link.RateBPS = o.Profile.RateBPS
		}
		pc.A.S2S.CAFile = certA.CA
		log := slog.New(slog.DiscardHandler)
		if os.Getenv("ISTHMUS_LOG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		gb, err := gateway.New(pc.B, gateway.Options{Logger: log.With("side", "b"), PrivateKey: pc.KeyB, LinkListener: r.link.Listen(), S2SListener: lnB})
		must(t, err)
		ga, err := gateway.New(pc.A, gateway.Options{Logger: log.With("side", "a"), PrivateKey: pc.KeyA, LinkDial: r.dial, S2SListener: lnA})
		must(t, err)
		for _, g := range []*gateway.Gateway{ga, gb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := g.Run(ctx); err != nil {
					t.Errorf("gateway: %v", err)
				}
			}()
		}
		defer func() {
			sa, sb := ga.Snapshot(), gb.Snapshot()
			logf("%s pair: gateway a out: %d stanzas, raw %d B, wire %d B (raw/wire %.2fx); gateway b out: %d stanzas, raw %d B, wire %d B (raw/wire %.2fx)",
				o.Profile.Name, sa.Out.StanzasTotal, sa.Out.RawBytes, sa.Out.WireBytes, sa.Out.Ratio(),
				sb.Out.StanzasTotal, sb.Out.RawBytes, sb.Out.WireBytes, sb.Out.Ratio())
		}()
	}

	w := &workload{t: t, ctx: ctx, o: o, r: r, rec: newRecorder(), c2s: [2]string{pa.C2SAddr, eb.C2SAddr}, logf: logf,
		res: Result{Mode: mode, Profile: o.Profile.Name}, mode: mode, phaseStart: time.Now()}
	t0 := time.Now()
	w.script()
	w.res.Elapsed = time.Since(t0)
	ab, ba := r.counts()
	w.res.Air = [2]air{ab, ba}
	logf("%s %s: done in %v; a→b %+v; b→a %+v", o.Profile.Name, mode, w.res.Elapsed.Round(time.Second), ab, ba)
	logf("%s %s: S2S authentication as the servers logged it: %s", o.Profile.Name, mode, authSummary(eb.Log(), pa.Log()))
	return w.res
}

// workload is the scripted session; see the package doc.
type workload struct {
	t    *testing.T
	ctx  context.Context
	o    Options
	r    *radio
	rec  *recorder
	c2s  [2]string
	logf func(string, ...any)
	mode string
	res  Result

	phaseStart       time.Time
	phaseAB, phaseBA int64
}

var names = [2][2]string{{"alice", "carol"}, {"bob", "dave"}}
var domains = [2]string{domainA, domainB}

func (w *workload) fatal(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s %s: %s", w.o.Profile.Name, w.mode, fmt.Sprintf(format, args...))
}

func (w *workload) check(err error) {
	w.t.Helper()
	if err != nil {
		w.fatal("%v", err)
	}
}

// phase closes the current phase (after the link has gone quiet) and
// starts the next.
func (w *workload) phase(name string) {
	w.settle()
	ab, ba := w.r.counts()
	if name != "" {
		p := Phase{Name: name, AB: ab.Bytes - w.phaseAB, BA: ba.Bytes - w.phaseBA, Duration: time.Since(w.phaseStart)}
		w.res.Phases = append(w.res.Phases, p)
		w.logf("%s %s: phase %-9s a→b %7d B  b→a %7d B  in %v", w.o.Profile.Name, w.mode, name, p.AB, p.BA, p.Duration.Round(100*time.Millisecond))
	}
	w.phaseAB, w.phaseBA, w.phaseStart = ab.Bytes, ba.Bytes, time.Now()
}

// settle waits until nothing has crossed the radio for a while.
func (w *workload) settle() {
	quiet := w.o.Quiet
	if quiet == 0 {
		quiet = 3 * time.Second
	}
	quiet = max(quiet, 4*w.o.Profile.Delay)
	deadline := time.Now().Add(waitLimit)
	ab, ba := w.r.counts()
	last, since := ab.Bytes+ba.Bytes, time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		ab, ba := w.r.counts()
		if b := ab.Bytes + ba.Bytes; b != last || !w.r.idle() {
			last, since = b, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
	w.logf("%s %s: link not quiet after %v", w.o.Profile.Name, w.mode, waitLimit)
}

func (w *workload) login(side int, name string) *user {
	w.t.Helper()
	u, err := login(w.ctx, w.t, name, domains[side], w.c2s[side], side, w.rec)
	w.check(err)
	return u
}

func (w *workload) wait(u *user, mark int, match func(prosodytest.Presence) bool, what string) prosodytest.Presence {
	w.t.Helper()
	p, err := u.waitPresence(w.ctx, mark, waitLimit, match)
	if err != nil {
		w.fatal("waiting for %s: %v", what, err)
	}
	return p
}

// script is the workload: the same for both runs.
func (w *workload) script() {
	ctx := w.ctx
	w.phase("start") // pair: the gateways' link comes up; direct: nothing
	// Everyone logs in and comes online; nobody has contacts yet.
	var us [2][2]*user
	for s := range 2 {
		for i := range 2 {
			us[s][i] = w.login(s, names[s][i])
			w.check(us[s][i].c.SendPresence(ctx, "", "at work"))
		}
	}
	alice, carol, bob, dave := us[0][0], us[0][1], us[1][0], us[1][1]

	// Subscriptions both ways: alice⇄bob, carol⇄dave.
	for _, p := range [][2]*user{{alice, bob}, {dave, carol}} {
		x, y := p[0], p[1]
		mx, my := x.mark(), y.mark()
		w.check(x.c.Subscribe(ctx, y.bare()))
		w.wait(y, my, typed("subscribe", x.bare()), "subscribe from "+x.bare())
		w.check(y.c.Approve(ctx, x.bare()))
		w.check(y.c.Subscribe(ctx, x.bare()))
		w.wait(x, mx, available(y.bare()), "presence of "+y.bare())
		w.wait(x, mx, typed("subscribe", y.bare()), "subscribe from "+y.bare())
		w.check(x.c.Approve(ctx, y.bare()))
		w.wait(y, my, available(x.bare()), "presence of "+x.bare())
	}
	w.phase("subscribe")

	// iq: ping, version and disco#info to the other server, ping to the
	// contact's client.
	w.iqs(alice, bob)

	// MUC: bob makes the room (instant room), then dave, alice and carol
	// join; everyone sees all four occupants.
	occupants := []*user{bob, dave, alice, carol}
	marks := make([]int, len(occupants))
	for i, u := range occupants {
		marks[i] = u.mark()
		join := xmlstream.Wrap(xmlstream.Wrap(nil, el("", "history", "maxstanzas", "0")), el("http://jabber.org/protocol/muc", "x"))
		w.check(u.presenceTo(ctx, room+"/"+u.name, "", join))
		w.wait(u, marks[i], available(room+"/"+u.name), u.name+"'s own presence in the room")
		if i == 0 {
			form := xmlstream.Wrap(xmlstream.Wrap(nil, el("jabber:x:data", "x", "type", "submit")), el("http://jabber.org/protocol/muc#owner", "query"))
			_, err := u.iq(ctx, waitLimit, room, stanza.SetIQ, form)
			w.check(err)
		}
	}
	for i, u := range occupants {
		for _, o := range occupants {
			w.wait(u, marks[i], available(room+"/"+o.name), u.name+" sees "+o.name+" in the room")
		}
	}
	w.phase("muc-join")

	// Chat phase: each user sends one chat message to its contact per
	// Interval, staggered; every sixth slot one occupant (in turn) also
	// says something in the room.
	partner := map[string]*user{"alice": bob, "bob": alice, "carol": dave, "dave": carol}
	senders := []*user{alice, bob, carol, dave}
	slot := w.o.Interval / time.Duration(len(senders))
	var bodies []string
	var groupBodies []string
	end := time.Now().Add(w.o.Duration)
	for k := 0; time.Now().Before(end); k++ {
		u := senders[k%len(senders)]
		body := fmt.Sprintf("%s to %s, message %d: the weather here is fine, wind 12 knots from the north-west", u.name, partner[u.name].name, k)
		w.rec.sending(body, u.side, "chat")
		w.check(u.message(ctx, partner[u.name].bare(), "chat", "m"+strconv.Itoa(k), body))
		w.res.ChatSent[u.side]++
		bodies = append(bodies, body)
		if k%6 == 3 {
			g := occupants[(k/6)%len(occupants)]
			gb := fmt.Sprintf("%s in the room, %d: position report at %s, all well", g.name, k, time.Now().UTC().Format("15:04:05"))
			w.rec.sending(gb, g.side, "groupchat")
			w.check(g.message(ctx, room, "groupchat", "g"+strconv.Itoa(k), gb))
			w.res.GroupSent[g.side]++
			groupBodies = append(groupBodies, gb)
		}
		select {
		case <-time.After(slot):
		case <-ctx.Done():
			w.fatal("%v", ctx.Err())
		}
	}
	deadline := time.Now().Add(waitLimit)
	for _, b := range bodies {
		for w.rec.delivered(b) < 1 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := w.rec.delivered(b); n != 1 {
			w.fatal("chat %q delivered %d times", b, n)
		}
	}
	for _, b := range groupBodies {
		for w.rec.delivered(b) < len(occupants) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := w.rec.delivered(b); n != len(occupants) {
			w.fatal("groupchat %q delivered %d times, want %d (each occupant once)", b, n, len(occupants))
		}
	}
	for s := range 2 {
		w.res.Chat[s] = w.rec.latencies(s, "chat")
		w.res.Groupchat[s] = w.rec.latencies(s, "groupchat")
	}
	w.phase("chat")

	// Presence at login: alice and bob log out and in again, in turn; the
	// time from the start of the login until the client holds the
	// contact's presence.
	for n := 0; n < w.o.Logins; n++ {
		for s := range 2 {
			u := us[s][0]
			w.check(u.c.SendUnavailable(ctx))
			u.close()
			w.settle()
			nu := w.login(s, u.name)
			w.check(nu.c.SendPresence(ctx, "", "back"))
			p := w.wait(nu, 0, available(partner[u.name].bare()), "presence of "+partner[u.name].bare()+" at login")
			d := p.Received.Sub(nu.loginStart)
			// Login[i] is indexed by the direction the presence travels.
			w.res.Login[1-s] = append(w.res.Login[1-s], d)
			us[s][0] = nu
			w.settle()
		}
	}
	w.phase("login")

	// Everyone leaves.
	for s := range 2 {
		for i := range 2 {
			w.check(us[s][i].c.SendUnavailable(ctx))
			us[s][i].close()
		}
	}
	w.phase("logout")
}

// iqs is the iq phase (unless Options.NoIQ): alice and bob each ask the
// other server for ping, version and disco#info and ping the other's
// client.
func (w *workload) iqs(alice, bob *user) {
	if w.o.NoIQ {
		return
	}
	ctx := w.ctx
	for s, u := range []*user{alice, bob} {
		peer := []*user{bob, alice}[s]
		for _, q := range []struct {
			to      string
			payload xml.TokenReader
		}{
			{domains[1-s], xmlstream.Wrap(nil, el("urn:xmpp:ping", "ping"))},
			{domains[1-s], xmlstream.Wrap(nil, el("jabber:iq:version", "query"))},
			{domains[1-s], xmlstream.Wrap(nil, el("http://jabber.org/protocol/disco#info", "query"))},
			{peer.c.JID(), xmlstream.Wrap(nil, el("urn:xmpp:ping", "ping"))},
		} {
			rtt, err := u.iq(ctx, waitLimit, q.to, stanza.GetIQ, q.payload)
			w.check(err)
			w.res.IQ[s] = append(w.res.IQ[s], rtt)
		}
	}
	w.phase("iq")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

var (
	ejabberdAuth = regexp.MustCompile(`Accepted (inbound|outbound) s2s (\S+) authentication (\S+ -> \S+)`)
	prosodyAuth  = regexp.MustCompile(`Accepting SASL EXTERNAL identity from (\S+)`)
)

// authSummary lists, once each, how the S2S streams authenticated, from
// ejabberd's and Prosody's logs, and how many of ejabberd's S2S log lines
// name a stream without TLS.
func authSummary(ejLog, prLog string) string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, m := range ejabberdAuth.FindAllStringSubmatch(ejLog, -1) {
		add(fmt.Sprintf("ejabberd %s %s %s", m[1], m[2], m[3]))
	}
	for _, m := range prosodyAuth.FindAllStringSubmatch(prLog, -1) {
		add("Prosody inbound EXTERNAL from " + m[1])
	}
	plain := 0 // ejabberd names a TLS stream (tls|…), a plain one (tcp|…)
	for _, line := range strings.Split(ejLog, "\n") {
		if strings.Contains(line, "(tcp|") && strings.Contains(line, "s2s") {
			plain++
		}
	}
	return fmt.Sprintf("%s; ejabberd S2S log lines without TLS: %d", strings.Join(out, "; "), plain)
}
