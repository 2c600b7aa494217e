package prosodytest

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoServers starts a.test and b.test pointing their S2S at each other.
func twoServers(t *testing.T, rosters bool) (a, b *Server) {
	t.Helper()
	bS2S := FreePort(t)
	aOpt := Options{
		Domain:         "a.test",
		Users:          map[string]string{"alice": "alice-pw"},
		Overrides:      map[string]string{"b.test": net.JoinHostPort("127.0.0.1", strconv.Itoa(bS2S))},
		DialbackSecret: "a-secret",
	}
	bOpt := Options{
		Domain:  "b.test",
		Users:   map[string]string{"bob": "bob-pw"},
		S2SPort: bS2S,
	}
	if rosters {
		aOpt.Rosters = map[string][]RosterItem{"alice": Both("bob@b.test")}
		bOpt.Rosters = map[string][]RosterItem{"bob": {{JID: "alice@a.test", Subscription: "both", Name: "Alice", Groups: []string{"Friends"}}}}
	}
	a = Start(t, aOpt)
	bOpt.Overrides = map[string]string{"a.test": a.S2SAddr}
	b = Start(t, bOpt)
	return a, b
}

func dial(ctx context.Context, t *testing.T, s *Server, user, pass string) *Client {
	t.Helper()
	c, err := Dial(ctx, t, s, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func isAvailableFrom(bare string) func(Presence) bool {
	return func(p Presence) bool {
		return p.Type == "" && len(p.From) > len(bare) && p.From[:len(bare)+1] == bare+"/"
	}
}

func isTypeFrom(typ, bare string) func(Presence) bool {
	return func(p Presence) bool { return p.Type == typ && p.From == bare }
}

// TestDirectS2S: two real Prosodys over plain S2S with dialback; real
// clients subscribe both ways, see presence, and exchange messages.
func TestDirectS2S(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := twoServers(t, false)

	alice := dial(ctx, t, a, "alice", "alice-pw")
	bob := dial(ctx, t, b, "bob", "bob-pw")
	if err := alice.SendPresence(ctx, "", "alice here"); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendPresence(ctx, "chat", ""); err != nil {
		t.Fatal(err)
	}

	// alice -> bob subscription.
	if err := alice.Subscribe(ctx, "bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitPresence(ctx, isTypeFrom("subscribe", "alice@a.test")); err != nil {
		t.Fatal(err)
	}
	if err := bob.Approve(ctx, "alice@a.test"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Subscribe(ctx, "alice@a.test"); err != nil {
		t.Fatal(err)
	}
	// alice now gets bob's presence (after "subscribed") and bob's request.
	p, err := alice.WaitPresence(ctx, isAvailableFrom("bob@b.test"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Show != "chat" {
		t.Errorf("alice sees bob's show %q, want chat", p.Show)
	}
	if err := alice.Approve(ctx, "bob@b.test"); err != nil {
		t.Fatal(err)
	}
	p, err = bob.WaitPresence(ctx, isAvailableFrom("alice@a.test"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != "alice here" {
		t.Errorf("bob sees alice's status %q, want %q", p.Status, "alice here")
	}

	// Both rosters say "both" once the server has processed everything.
	checkRoster(ctx, t, alice, "bob@b.test", "both")
	checkRoster(ctx, t, bob, "alice@a.test", "both")

	exchange(ctx, t, alice, bob, 20)

	// The traffic went over the overrides and was authenticated by dialback.
	for _, s := range []*Server{a, b} {
		log := s.Log()
		for _, want := range []string{"connecting to override 127.0.0.1:", "is now authenticated for", "verified dialback key... it is valid"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s log lacks %q", s.Domain, want)
			}
		}
	}

	if n := alice.Dropped() + bob.Dropped(); n != 0 {
		t.Errorf("clients dropped %d stanzas", n)
	}
	if err := alice.Close(); err != nil {
		t.Errorf("close alice: %v", err)
	}
	// bob learns alice left.
	if _, err := bob.WaitPresence(ctx, func(p Presence) bool {
		return p.Type == "unavailable" && len(p.From) > len("alice@a.test") && p.From[:len("alice@a.test/")] == "alice@a.test/"
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProvisionedRosters: rosters written before start give presence at
// login with no subscription round trip.
func TestProvisionedRosters(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := twoServers(t, true)

	alice := dial(ctx, t, a, "alice", "alice-pw")
	items, err := alice.Roster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].JID != "bob@b.test" || items[0].Subscription != "both" {
		t.Fatalf("alice's roster = %+v, want bob@b.test both", items)
	}
	bob := dial(ctx, t, b, "bob", "bob-pw")
	items, err = bob.Roster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].JID != "alice@a.test" || items[0].Subscription != "both" ||
		items[0].Name != "Alice" || len(items[0].Groups) != 1 || items[0].Groups[0] != "Friends" {
		t.Fatalf("bob's roster = %+v, want alice@a.test both, Alice, [Friends]", items)
	}

	if err := alice.SendPresence(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendPresence(ctx, "away", "lunch"); err != nil {
		t.Fatal(err)
	}
	// bob's login presence goes to alice; alice's probe of bob (or bob's
	// probe of alice) brings the other direction.
	p, err := alice.WaitPresence(ctx, isAvailableFrom("bob@b.test"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Show != "away" || p.Status != "lunch" {
		t.Errorf("alice sees bob as %q/%q, want away/lunch", p.Show, p.Status)
	}
	if _, err := bob.WaitPresence(ctx, isAvailableFrom("alice@a.test")); err != nil {
		t.Fatal(err)
	}
	exchange(ctx, t, alice, bob, 3)
}

func checkRoster(ctx context.Context, t *testing.T, c *Client, contact, sub string) {
	t.Helper()
	// The final roster push may trail the presence that got us here.
	for deadline := time.Now().Add(5 * time.Second); ; {
		items, err := c.Roster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.JID == contact && it.Subscription == sub {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s roster = %+v, want %s with subscription %s", c.JID(), items, contact, sub)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exchange sends n messages each way at once and checks each arrives
// exactly once, in order, from the right sender.
func exchange(ctx context.Context, t *testing.T, x, y *Client, n int) {
	t.Helper()
	type result struct {
		lat []time.Duration
		err error
	}
	send := func(from, to *Client, toBare, prefix string) map[string]time.Time {
		sent := make(map[string]time.Time, n)
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("%s-%02d", prefix, i)
			sent[id] = time.Now()
			if err := from.SendMessage(ctx, toBare, id, "body of "+id); err != nil {
				t.Fatal(err)
			}
		}
		return sent
	}
	recv := func(c *Client, fromBare, prefix string, sent func() map[string]time.Time) result {
		var r result
		for i := 0; i < n; i++ {
			m, err := c.NextMessage(ctx)
			if err != nil {
				r.err = fmt.Errorf("after %d of %d: %w", i, n, err)
				return r
			}
			want := fmt.Sprintf("%s-%02d", prefix, i)
			if m.ID != want || m.Body != "body of "+want {
				r.err = fmt.Errorf("message %d: id %q body %q, want %q (duplicate or out of order)", i, m.ID, m.Body, want)
				return r
			}
			if len(m.From) <= len(fromBare) || m.From[:len(fromBare)+1] != fromBare+"/" {
				r.err = fmt.Errorf("message %s from %q, want %s/...", m.ID, m.From, fromBare)
				return r
			}
			if ts, ok := sent()[m.ID]; ok {
				r.lat = append(r.lat, m.Received.Sub(ts))
			}
		}
		return r
	}

	xBare, yBare := bare(x.JID()), bare(y.JID())
	var sentXY, sentYX map[string]time.Time
	ready := make(chan struct{})
	rx := make(chan result, 2)
	go func() { <-ready; rx <- recv(y, xBare, "xy", func() map[string]time.Time { return sentXY }) }()
	go func() { <-ready; rx <- recv(x, yBare, "yx", func() map[string]time.Time { return sentYX }) }()
	// Receivers start after both send loops so they read the maps safely;
	// the queues hold everything in between.
	sentXY = send(x, y, yBare, "xy")
	sentYX = send(y, x, xBare, "yx")
	close(ready)
	var lat []time.Duration
	for i := 0; i < 2; i++ {
		r := <-rx
		if r.err != nil {
			t.Fatal(r.err)
		}
		lat = append(lat, r.lat...)
	}
	// Nothing more may arrive: no duplicates after the last.
	select {
	case m := <-x.Messages():
		t.Errorf("extra message at %s: %+v", x.JID(), m)
	case m := <-y.Messages():
		t.Errorf("extra message at %s: %+v", y.JID(), m)
	case <-time.After(300 * time.Millisecond):
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) != 2*n {
		t.Fatalf("%d latencies, want %d", len(lat), 2*n)
	}
	t.Logf("message latency over %d messages: min %v, median %v, max %v",
		len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
}

func bare(full string) string {
	for i := 0; i < len(full); i++ {
		if full[i] == '/' {
			return full[:i]
		}
	}
	return full
}
