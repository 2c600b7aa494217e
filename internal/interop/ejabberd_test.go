package interop

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/internal/ejabberdtest"
	"github.com/isthmus-xmpp/isthmus/internal/prosodytest"
	"github.com/isthmus-xmpp/isthmus/internal/testpki"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// secureDeployment is ej.test on a real ejabberd and pr.test on a real
// Prosody, both at their default secure S2S settings (ejabberd:
// s2s_use_starttls: required; Prosody: s2s_require_encryption = true),
// each pointed at its own gateway for the other domain (ejabberd through
// SRV records from a DNS stub, Prosody through the connect override), the
// gateways joined by an emulated link. A test CA signed every certificate:
// each server's for its domains, and each gateway's for the remote domains
// it stands in for; servers and gateways trust only that CA.
type secureDeployment struct {
	ej     *ejabberdtest.Server
	pr     *prosodytest.Server
	ga, gb *gateway.Gateway // ga: ejabberd's side, gb: Prosody's side
}

func deploySecure(t *testing.T, ctx context.Context, profile string) *secureDeployment {
	t.Helper()
	p, ok := emu.Lookup(profile)
	if !ok {
		t.Fatalf("no profile %s", profile)
	}
	ca, err := testpki.NewCA("isthmus interop CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issue := func(name string, domains ...string) testpki.Files {
		f, err := ca.WriteFiles(dir, name, domains...)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ejCert := issue("ejabberd", "ej.test", "conference.ej.test")
	prCert := issue("prosody", "pr.test")
	gaCert := issue("gateway-a", "pr.test")                       // A stands in for pr.test toward ejabberd
	gbCert := issue("gateway-b", "ej.test", "conference.ej.test") // B stands in for ej.test toward Prosody

	lnA, lnB := s2sListeners(t)
	dns, err := ejabberdtest.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dns.SetSRV("pr.test", lnA.Addr().(*net.TCPAddr).Port)

	var ej *ejabberdtest.Server
	var pr *prosodytest.Server
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ejabberd takes a few seconds to start: start both at once
		defer wg.Done()
		ej = ejabberdtest.Start(t, ejabberdtest.Options{
			Domain: "ej.test", MUC: true, DNSPort: dns.Port(), TLS: ejCert,
			Users: map[string]string{"carol": "carol-pw", "dave": "dave-pw"},
		})
	}()
	pr = prosodytest.Start(t, prosodytest.Options{
		Domain:         "pr.test",
		Users:          map[string]string{"bob": "bob-pw", "erin": "erin-pw"},
		Overrides:      map[string]string{"ej.test": lnB.Addr().String(), "conference.ej.test": lnB.Addr().String()},
		DialbackSecret: "prosody-pr-secret-0123456789",
		LogLevel:       "info",
		TLS:            prosodytest.TLSFiles{Cert: prCert.Cert, Key: prCert.Key, CA: prCert.CA},
	})
	wg.Wait()
	if ej == nil {
		t.FailNow() // Start failed (and said why) on its goroutine
	}

	pc, err := gateway.NewPairConfig(
		map[string]string{"ej.test": ej.S2SAddr, "conference.ej.test": ej.S2SAddr},
		map[string]string{"pr.test": pr.S2SAddr}, "interop-secure-secret")
	if err != nil {
		t.Fatal(err)
	}
	for c, cert := range map[*config.Config]testpki.Files{pc.A: gaCert, pc.B: gbCert} {
		c.S2S.CertFile, c.S2S.KeyFile = cert.Cert, cert.Key
		c.S2S.RequireTLS = true
		c.Link.RateBPS = p.RateBPS
	}
	// B verifies Prosody's certificate and offers it SASL EXTERNAL; A has
	// no CA file, so ejabberd authenticates to it with dialback, which A
	// verifies on a connection back to ejabberd — with STARTTLS, or
	// ejabberd refuses it.
	pc.B.S2S.CAFile = gbCert.CA
	ga, gb, _ := runPair(ctx, t, pc, p, lnA, lnB)
	return &secureDeployment{ej: ej, pr: pr, ga: ga, gb: gb}
}

// TestEjabberdProsodySecure: real clients on ejabberd and Prosody, both at
// their default secure S2S settings, through the gateway pair over an
// emulated vhf-9600 link: subscriptions both ways, presence at login,
// messages both ways each exactly once and in order, iqs (ping, version,
// disco) both ways, a MUC room on ejabberd with occupants from both
// sides, and offline delivery both ways. Every S2S hop is TLS; the
// gateways authenticate with SASL EXTERNAL, the servers with dialback
// (ejabberd) and SASL EXTERNAL (Prosody): see the log checks.
func TestEjabberdProsodySecure(t *testing.T) {
	ejabberdtest.Require(t)
	prosodytest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	d := deploySecure(t, ctx, "vhf-9600")
	t.Logf("servers and gateways up in %v", time.Since(start).Round(time.Millisecond))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dialEj := func(user, pass string) *prosodytest.Client {
		t.Helper()
		c, err := prosodytest.DialAddr(ctx, t, d.ej.Domain, d.ej.C2SAddr, user, pass)
		must(err)
		return c
	}
	carol := dialEj("carol", "carol-pw")
	bob := dial(ctx, t, d.pr, "bob", "bob-pw")
	must(carol.SendPresence(ctx, "", "at the ejabberd end"))
	must(bob.SendPresence(ctx, "chat", "at the prosody end"))

	// Subscriptions both ways.
	subscribeBoth(ctx, t, carol, "carol@ej.test", "at the ejabberd end", bob, "bob@pr.test", "chat", "at the prosody end")
	t.Logf("subscriptions both ways done at %v", time.Since(start).Round(time.Millisecond))

	// Messages both ways, each exactly once and in order.
	const spaced, burst = 10, 40
	latEP := exchange(ctx, t, carol, bob, "bob@pr.test", "ep", spaced, burst)
	latPE := exchange(ctx, t, bob, carol, "carol@ej.test", "pe", spaced, burst)

	// iqs both ways: to the servers, to the MUC service, to a client.
	iqs := []struct {
		c    *prosodytest.Client
		xml  string
		want string
	}{
		{carol, `<iq type='get' id='ping-pr' to='pr.test'><ping xmlns='urn:xmpp:ping'/></iq>`, ""},
		{carol, `<iq type='get' id='ver-pr' to='pr.test'><query xmlns='jabber:iq:version'/></iq>`, "Prosody"},
		{carol, `<iq type='get' id='ping-bob' to='` + bob.JID() + `'><ping xmlns='urn:xmpp:ping'/></iq>`, ""},
		{bob, `<iq type='get' id='ping-ej' to='ej.test'><ping xmlns='urn:xmpp:ping'/></iq>`, ""},
		{bob, `<iq type='get' id='ver-ej' to='ej.test'><query xmlns='jabber:iq:version'/></iq>`, "ejabberd"},
		{bob, `<iq type='get' id='disco-muc' to='conference.ej.test'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, "http://jabber.org/protocol/muc"},
		{bob, `<iq type='get' id='ping-carol' to='` + carol.JID() + `'><ping xmlns='urn:xmpp:ping'/></iq>`, ""},
	}
	iqOK := 0
	for _, q := range iqs {
		qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
		resp, err := q.c.IQ(qctx, q.xml)
		qcancel()
		switch {
		case err != nil:
			t.Errorf("iq %s: %v", q.xml, err)
		case !strings.Contains(resp, `type="result"`) || !strings.Contains(resp, q.want):
			t.Errorf("iq %s: answer %s, want a result containing %q", q.xml, resp, q.want)
		default:
			iqOK++
		}
	}

	// A MUC room on ejabberd with an occupant from each side.
	room := "deck@conference.ej.test"
	must(carol.SendRaw(ctx, `<presence to='`+room+`/carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>`))
	_, err := carol.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.From == room+"/carol" && p.Type == "" })
	must(err)
	resp, err := carol.IQ(ctx, `<iq type='set' id='room-config' to='`+room+`'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`)
	must(err)
	if !strings.Contains(resp, `type="result"`) {
		t.Fatalf("room configuration: %s", resp)
	}
	must(bob.SendRaw(ctx, `<presence to='`+room+`/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`))
	waitAll(ctx, t, bob,
		func(p prosodytest.Presence) bool { return p.From == room+"/carol" && p.Type == "" },
		func(p prosodytest.Presence) bool { return p.From == room+"/bob" && p.Type == "" })
	_, err = carol.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.From == room+"/bob" && p.Type == "" })
	must(err)
	groupchat := func(sender *prosodytest.Client, nick, id string, receivers ...*prosodytest.Client) {
		t.Helper()
		must(sender.SendRaw(ctx, `<message type='groupchat' id='`+id+`' to='`+room+`'><body>body of `+id+`</body></message>`))
		for _, r := range receivers {
			m, err := r.NextMessage(ctx)
			for err == nil && m.From == room && m.Body == "" {
				m, err = r.NextMessage(ctx) // the room's subject, sent at join
			}
			must(err)
			if m.Type != "groupchat" || m.From != room+"/"+nick || m.Body != "body of "+id {
				t.Errorf("%s got %+v, want groupchat %s from %s", r.JID(), m, id, nick)
			}
		}
	}
	groupchat(carol, "carol", "muc-1", carol, bob)
	groupchat(bob, "bob", "muc-2", carol, bob)

	// Presence at login: bob leaves and comes back; both see it at once.
	must(bob.Close())
	_, err = carol.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.Type == "unavailable" && from("bob@pr.test")(p.From) })
	must(err)
	loginStart := time.Now()
	bob = dial(ctx, t, d.pr, "bob", "bob-pw")
	must(bob.SendPresence(ctx, "", "back"))
	_, err = bob.WaitPresence(ctx, func(p prosodytest.Presence) bool { return p.Type == "" && from("carol@ej.test")(p.From) })
	must(err)
	loginPresence := time.Since(loginStart)
	_, err = carol.WaitPresence(ctx, func(p prosodytest.Presence) bool {
		return p.Type == "" && p.Status == "back" && from("bob@pr.test")(p.From)
	})
	must(err)

	// Offline delivery both ways: to dave (ejabberd) and erin (Prosody),
	// who have never logged in.
	must(bob.SendMessage(ctx, "dave@ej.test", "off-1", "body of off-1"))
	must(carol.SendMessage(ctx, "erin@pr.test", "off-2", "body of off-2"))
	time.Sleep(3 * time.Second) // stored by the servers, over the link
	offline := func(c *prosodytest.Client, id string) {
		t.Helper()
		must(c.SendPresence(ctx, "", ""))
		m, err := c.NextMessage(ctx)
		must(err)
		if m.ID != id || m.Body != "body of "+id {
			t.Errorf("%s got %+v, want the offline message %s", c.JID(), m, id)
		}
	}
	offline(dialEj("dave", "dave-pw"), "off-1")
	offline(dial(ctx, t, d.pr, "erin", "erin-pw"), "off-2")

	noExtraMessages(t, carol, bob)
	// How each hop authenticated, as the servers logged it: the gateways
	// toward both servers with SASL EXTERNAL (their certificates for the
	// remote domains); ejabberd toward A with dialback, verified on a TLS
	// connection back to it; Prosody toward B with SASL EXTERNAL (B
	// trusts the CA): then nothing connects back to Prosody, so each
	// encrypted inbound stream it logs is one of the gateway's EXTERNAL
	// ones.
	ejLog, prLog := d.ej.Log(), d.pr.Log()
	for _, want := range []struct{ log, line string }{
		{ejLog, "Accepted inbound s2s EXTERNAL authentication pr.test -> ej.test"},
		{ejLog, "Accepted inbound s2s EXTERNAL authentication pr.test -> conference.ej.test"},
		{ejLog, "Accepted outbound s2s dialback authentication ej.test -> pr.test"},
		{prLog, "Accepting SASL EXTERNAL identity from ej.test"},
		{prLog, "Accepting SASL EXTERNAL identity from conference.ej.test"},
		{prLog, "Outgoing s2s connection pr.test->ej.test complete"},
	} {
		if !strings.Contains(want.log, want.line) {
			t.Errorf("server log lacks %q", want.line)
		}
	}
	for _, line := range strings.Split(ejLog, "\n") {
		if strings.Contains(line, "(tcp|") && strings.Contains(line, "s2s") {
			t.Errorf("ejabberd: S2S without TLS: %s", line)
		}
	}
	prIn, prExternal := 0, strings.Count(prLog, "Accepting SASL EXTERNAL identity")
	for _, line := range strings.Split(prLog, "\n") {
		if strings.Contains(line, "s2sin") && strings.Contains(line, "Stream encrypted") {
			prIn++
		}
	}
	if prIn != prExternal {
		t.Errorf("Prosody: %d encrypted inbound S2S streams, %d with SASL EXTERNAL: it authenticated to B by dialback, not EXTERNAL", prIn, prExternal)
	}

	sa, sb := d.ga.Snapshot(), d.gb.Snapshot()
	report(t, "ejabberd+prosody ej→pr", sa.Out, latEP)
	report(t, "ejabberd+prosody pr→ej", sb.Out, latPE)
	t.Logf("ejabberd+prosody secure S2S: iq %d/%d answered, MUC 2 occupants 2 groupchat messages, offline 2/2, presence at login %v, total %v",
		iqOK, len(iqs), loginPresence.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
