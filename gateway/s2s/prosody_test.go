package s2s

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
)

// TestProsody runs both roles against a real Prosody 0.12 (a.test): Prosody
// dials our Server (b.test) and we verify its dialback key with it; our Pool
// dials Prosody, which verifies our key with our Server.
func TestProsody(t *testing.T) {
	prosodytest.Require(t)
	if testing.Short() {
		t.Skip("short")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := newSink()
	var pr *prosodytest.Server
	resolve := func(d string) (string, error) {
		if d == "a.test" && pr != nil {
			return pr.S2SAddr, nil
		}
		return "", fmt.Errorf("unknown domain %s", d)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := NewServer(ServerConfig{
		Hosts:   func(d string) bool { return d == "b.test" },
		Resolve: resolve,
		Secret:  "gw-secret",
		Deliver: k.deliver,
		Events:  k.event,
		Logger:  log,
	})
	pr = prosodytest.Start(t, prosodytest.Options{
		Domain:    "a.test",
		Users:     map[string]string{"alice": "pw"},
		Overrides: map[string]string{"b.test": l.Addr().String()},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	pool := NewPool(PoolConfig{Resolve: resolve, Secret: "gw-secret", Bounce: k.bounce, Events: k.event, Logger: log})
	defer func() {
		pool.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer tcancel()
	alice, err := prosodytest.Dial(tctx, t, pr, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()

	// Prosody -> our Server.
	if err := alice.SendMessage(tctx, "bob@b.test", "m1", "hello bob"); err != nil {
		t.Fatal(err)
	}
	k.wait(t, "message from Prosody", func() bool { return len(k.got) >= 1 })
	k.mu.Lock()
	got := k.got[0]
	k.mu.Unlock()
	if got.Name != "message" || got.ID != "m1" || !strings.HasPrefix(got.From, "alice@a.test/") || got.To != "bob@b.test" || !strings.Contains(string(got.Raw), "hello bob") {
		t.Errorf("got %+v (%s)", got, got.Raw)
	}

	// Our Pool -> Prosody.
	st, err := ParseStanza([]byte("<message from='bob@b.test/x' to='" + alice.JID() + "' id='r1' type='chat'><body>hi alice</body></message>"))
	if err != nil {
		t.Fatal(err)
	}
	pool.Send(st)
	m, err := alice.NextMessage(tctx)
	if err != nil {
		t.Fatalf("%v\nProsody log:\n%s", err, tail(pr.Log(), 3000))
	}
	if m.ID != "r1" || m.Body != "hi alice" || m.From != "bob@b.test/x" {
		t.Errorf("alice got %+v", m)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kind := range []string{"in-auth", "out-auth", "verify-answer"} {
		if !k.hasEvent(kind, "", "") {
			t.Errorf("no %s event: %+v", kind, k.events)
		}
	}
	if len(k.bounced) != 0 {
		t.Errorf("bounced %v", k.bounced)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
