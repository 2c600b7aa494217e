package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// deployment is a.test and b.test on real Prosody, each pointed at its own
// gateway for the other domain, the gateways joined by an emulated link.
type deployment struct {
	a, b   *prosodytest.Server
	ga, gb *gateway.Gateway
	link   *emu.Link
}

// runPair starts the two gateways of pc over an emulated link with profile
// p, gateway A dialling, on the S2S listeners given, until the test ends.
func runPair(ctx context.Context, t *testing.T, pc gateway.PairConfig, p emu.Profile, lnA, lnB net.Listener) (ga, gb *gateway.Gateway, l *emu.Link) {
	t.Helper()
	l = emu.NewLink(p, 1)
	t.Cleanup(func() { l.Close() })
	log := logger(t)
	gb, err := gateway.New(pc.B, gateway.Options{Logger: log.With("side", "b"), PrivateKey: pc.KeyB, LinkListener: l.Listen(), S2SListener: lnB})
	if err != nil {
		t.Fatal(err)
	}
	ga, err = gateway.New(pc.A, gateway.Options{Logger: log.With("side", "a"), PrivateKey: pc.KeyA, LinkDial: l.Dial, S2SListener: lnA})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, g := range []*gateway.Gateway{ga, gb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(ctx); err != nil {
				t.Errorf("gateway: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ga, gb, l
}

// s2sListeners opens the S2S listeners of gateways A and B on free
// loopback ports, so that the servers can be pointed at them before the
// gateways start (runPair hands them over).
func s2sListeners(t *testing.T) (lnA, lnB net.Listener) {
	t.Helper()
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnB, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lnA.Close()
		t.Fatal(err)
	}
	return lnA, lnB
}

// subscribeBoth has x (JID xj, status xStatus) subscribe to y (JID yj,
// show yShow, status yStatus) and the reverse, across the link, and checks
// each sees the other's presence as sent.
func subscribeBoth(ctx context.Context, t *testing.T, x *prosodytest.Client, xj, xStatus string, y *prosodytest.Client, yj, yShow, yStatus string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(x.Subscribe(ctx, yj))
	_, err := y.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.Type == "subscribe" && from(xj)(p.From) })
	must(err)
	must(y.Approve(ctx, xj))
	must(y.Subscribe(ctx, xj))
	// y's full JID's presence and y's bare JID's subscription request
	// come from different entities: RFC 6120 orders stanzas per pair of
	// entities only, so they may arrive either way round.
	got := waitAll(ctx, t, x,
		func(p prosodytest.Presence) bool { return p.Type == "" && from(yj)(p.From) },
		func(p prosodytest.Presence) bool { return p.Type == "subscribe" && from(yj)(p.From) })
	if p := got[0]; p.Show != yShow || p.Status != yStatus {
		t.Errorf("%s sees %s as show=%q status=%q", xj, yj, p.Show, p.Status)
	}
	must(x.Approve(ctx, yj))
	p, err := y.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.Type == "" && from(xj)(p.From) })
	must(err)
	if p.Status != xStatus {
		t.Errorf("%s sees %s's status %q", yj, xj, p.Status)
	}
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("ISTHMUS_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func deploy(t *testing.T, ctx context.Context, profile string, users map[string]map[string]string) *deployment {
	t.Helper()
	p, ok := emu.Lookup(profile)
	if !ok {
		t.Fatalf("no profile %s", profile)
	}
	lnA, lnB := s2sListeners(t)
	a := prosodytest.Start(t, prosodytest.Options{
		Domain:         "a.test",
		Users:          users["a.test"],
		Overrides:      map[string]string{"b.test": lnA.Addr().String()},
		DialbackSecret: "prosody-a-secret-0123456789",
		LogLevel:       "info",
	})
	b := prosodytest.Start(t, prosodytest.Options{
		Domain:         "b.test",
		Users:          users["b.test"],
		Overrides:      map[string]string{"a.test": lnB.Addr().String()},
		DialbackSecret: "prosody-b-secret-0123456789",
		LogLevel:       "info",
	})
	pc, err := gateway.NewPairConfig(map[string]string{"a.test": a.S2SAddr}, map[string]string{"b.test": b.S2SAddr}, "interop-gateway-secret")
	if err != nil {
		t.Fatal(err)
	}
	pc.A.Link.RateBPS, pc.B.Link.RateBPS = p.RateBPS, p.RateBPS
	ga, gb, l := runPair(ctx, t, pc, p, lnA, lnB)
	return &deployment{a: a, b: b, ga: ga, gb: gb, link: l}
}

func dial(ctx context.Context, t *testing.T, s *prosodytest.Server, user, pass string) *prosodytest.Client {
	t.Helper()
	c, err := prosodytest.Dial(ctx, t, s, user, pass)
	if err != nil {
		t.Fatalf("%s@%s: %v", user, s.Domain, err)
	}
	return c
}

func from(bare string) func(string) bool {
	return func(f string) bool { return f == bare || strings.HasPrefix(f, bare+"/") }
}

// TestProsodyThroughGateways: real clients on two real Prosody servers
// subscribe to each other across the gateway pair over an emulated
// vhf-9600 link, see each other's presence, and exchange messages both ways;
// each arrives exactly once and in order.
func TestProsodyThroughGateways(t *testing.T) {
	prosodytest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := deploy(t, ctx, "vhf-9600", map[string]map[string]string{
		"a.test": {"alice": "alice-pw"},
		"b.test": {"bob": "bob-pw"},
	})
	alice := dial(ctx, t, d.a, "alice", "alice-pw")
	bob := dial(ctx, t, d.b, "bob", "bob-pw")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(alice.SendPresence(ctx, "", "on the ship"))
	must(bob.SendPresence(ctx, "chat", "ashore"))

	// Subscriptions both ways, across the link.
	subscribeBoth(ctx, t, alice, "alice@a.test", "on the ship", bob, "bob@b.test", "chat", "ashore")

	// Messages: some spaced out (latency of a lone message), then a burst.
	const spaced, burst = 10, 40
	latAB := exchange(ctx, t, alice, bob, "bob@b.test", "ab", spaced, burst)
	latBA := exchange(ctx, t, bob, alice, "alice@a.test", "ba", spaced, burst)
	t.Logf("latencies a→b %v\nb→a %v", latAB, latBA)

	noExtraMessages(t, alice, bob)
	sa, sb := d.ga.Snapshot(), d.gb.Snapshot()
	report(t, "a→b", sa.Out, latAB)
	report(t, "b→a", sb.Out, latBA)
	if sa.Out.Stanzas["message"] < spaced+burst || sb.Out.Stanzas["message"] < spaced+burst {
		t.Errorf("gateways counted too few messages: a→b %d, b→a %d", sa.Out.Stanzas["message"], sb.Out.Stanzas["message"])
	}
	if sa.In.StanzasTotal != sb.Out.StanzasTotal && sb.Link.Unacked == 0 {
		t.Errorf("a received %d stanzas, b sent %d", sa.In.StanzasTotal, sb.Out.StanzasTotal)
	}
}

// waitAll reads c's presences until each predicate has matched one, in any
// order, and returns the matches in predicate order.
func waitAll(ctx context.Context, t *testing.T, c *prosodytest.Client, preds ...func(prosodytest.Presence) bool) []prosodytest.Presence {
	t.Helper()
	got := make([]prosodytest.Presence, len(preds))
	done := make([]bool, len(preds))
	for left := len(preds); left > 0; {
		select {
		case p := <-c.Presences():
			for i, pred := range preds {
				if !done[i] && pred(p) {
					got[i], done[i] = p, true
					left--
					break
				}
			}
		case <-ctx.Done():
			t.Fatalf("%s: waiting for presence: %v (matched %v)", c.JID(), ctx.Err(), done)
		}
	}
	return got
}

// exchange sends spaced messages one at a time, each waited for, then a
// burst, and checks that the receiver gets each exactly once, in order. It
// returns the latencies of the spaced messages.
func exchange(ctx context.Context, t *testing.T, from, to *prosodytest.Client, toBare, prefix string, spaced, burst int) []time.Duration {
	t.Helper()
	next := 0
	recv := func(id string) prosodytest.Message {
		t.Helper()
		m, err := to.NextMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", id, err)
		}
		if m.ID != id || m.Body != "body of "+id {
			t.Fatalf("got message id=%q body=%q, want %s (lost, duplicated or reordered)", m.ID, m.Body, id)
		}
		return m
	}
	var lat []time.Duration
	for ; next < spaced; next++ {
		id := fmt.Sprintf("%s-%03d", prefix, next)
		sent := time.Now()
		if err := from.SendMessage(ctx, toBare, id, "body of "+id); err != nil {
			t.Fatal(err)
		}
		m := recv(id)
		lat = append(lat, m.Received.Sub(sent))
	}
	for i := 0; i < burst; i++ {
		id := fmt.Sprintf("%s-%03d", prefix, spaced+i)
		if err := from.SendMessage(ctx, toBare, id, "body of "+id); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < burst; i++ {
		recv(fmt.Sprintf("%s-%03d", prefix, spaced+i))
	}
	return lat
}

// noExtraMessages gives late stanzas half a second, then fails the test
// for each message a client holds that the test did not read (a
// duplicate).
func noExtraMessages(t *testing.T, clients ...*prosodytest.Client) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	for _, c := range clients {
		select {
		case m := <-c.Messages():
			t.Errorf("%s got an extra message (duplicate?): %+v", c.JID(), m)
		default:
		}
	}
}

// report logs what a gateway counted in one direction and the latencies
// of the lone messages exchange sent that way.
func report(t *testing.T, name string, dir gateway.Direction, lat []time.Duration) {
	t.Helper()
	t.Logf("%s: %d stanzas (%d message, %d presence, %d iq), raw %d B, link %d B, wire %d B, raw/wire %.2fx; lone message latency p50 %v max %v",
		name, dir.StanzasTotal, dir.Stanzas["message"], dir.Stanzas["presence"], dir.Stanzas["iq"],
		dir.RawBytes, dir.LinkBytes, dir.WireBytes, dir.Ratio(), pct(lat, 50), pct(lat, 100))
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i].Round(time.Millisecond)
}
