package hostile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// Addresses: the good servers and the gateways use 127.0.0.1; attackers
// come from 127.0.0.2 (allowed), a stranger from 127.0.0.3 (not allowed).
const (
	attackerIP = "127.0.0.2"
	strangerIP = "127.0.0.3"
	secretA    = "good-server-a-secret"
	secretB    = "good-server-b-secret"
)

// Limits of gateway A in the suite: small, so that each is reached fast.
const (
	connectTimeout = time.Second
	maxConns       = 8
	stanzaRate     = 100
	stanzaBurst    = 20
	maxTextSize    = 8192
)

// goodServer is a well-behaved local XMPP server: it sends a message to
// the other side every tick and records what it receives.
type goodServer struct {
	domain, peer string
	ln           net.Listener
	dial         s2s.Dialer // nil: TCP
	srv          *s2s.Server
	pool         *s2s.Pool

	mu      sync.Mutex          // guards the following fields
	sent    int                 // messages sent: ids <domain>-0 .. sent-1
	got     map[string]int      // ids received from the other good server -> count
	other   map[string]int      // other stanzas received, by id (attackers' accepted ones, bounces)
	bounced []string            // our stanzas the gateway or our pool bounced
	errs    map[string][]string // error stanzas received: id -> conditions
}

func newGoodServer(t *testing.T, nw network, domain, peer, secret string) *goodServer {
	ln, err := nw.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &goodServer{domain: domain, peer: peer, ln: ln, dial: nw.dialer(), got: map[string]int{}, other: map[string]int{}, errs: map[string][]string{}}
}

var condRE = regexp.MustCompile(`<([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'`)

// wire builds the server and pool once the gateway's S2S address is known.
func (g *goodServer) wire(gw string, secret string, log *slog.Logger) {
	resolve := func(d string) (string, error) {
		if d == g.domain {
			return g.ln.Addr().String(), nil
		}
		return gw, nil
	}
	g.srv = s2s.NewServer(s2s.ServerConfig{
		Hosts: func(d string) bool { return d == g.domain }, Resolve: resolve, Secret: secret, Logger: log, Dial: g.dial,
		Deliver: func(st s2s.Stanza) {
			g.mu.Lock()
			defer g.mu.Unlock()
			switch {
			case st.Type == "error":
				for _, m := range condRE.FindAllStringSubmatch(string(st.Raw), -1) {
					g.errs[st.ID] = append(g.errs[st.ID], m[1])
				}
			case strings.HasPrefix(st.ID, g.peer+"-"):
				g.got[st.ID]++
			default:
				g.other[st.ID]++
			}
		},
	})
	g.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve, Secret: secret, Logger: log, Dial: g.dial,
		Bounce: func(st s2s.Stanza, cond string) {
			g.mu.Lock()
			g.bounced = append(g.bounced, st.ID+":"+cond)
			g.mu.Unlock()
		},
	})
}

// send sends the next message.
func (g *goodServer) send() {
	g.mu.Lock()
	id := fmt.Sprintf("%s-%d", g.domain, g.sent)
	g.sent++
	g.mu.Unlock()
	raw := fmt.Sprintf("<message from='alice@%s/res' to='bob@%s' id='%s' type='chat'><body>hello %s</body></message>", g.domain, g.peer, id, id)
	st, err := s2s.ParseStanza([]byte(raw))
	if err != nil {
		panic(err)
	}
	g.pool.Send(st)
}

func (g *goodServer) sentCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent
}

// delivered counts how many of from's ids [lo, hi) g received, and
// whether any arrived more than once.
func (g *goodServer) delivered(from string, lo, hi int) (n int, dup bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := lo; i < hi; i++ {
		c := g.got[fmt.Sprintf("%s-%d", from, i)]
		if c > 0 {
			n++
		}
		if c > 1 {
			dup = true
		}
	}
	return n, dup
}

func (g *goodServer) otherCount(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.other[id]
}

func (g *goodServer) errorsFor(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.errs[id]...)
}

// rig is the running system under attack.
type rig struct {
	t      *testing.T
	nw     network
	a, b   *goodServer
	ga, gb *gateway.Gateway
	s2sA   string            // gateway A's S2S address
	linkB  string            // gateway B's link address
	keyB   ed25519.PublicKey // gateway B's public key (for the wrong-key client)
}

func newRig(t *testing.T, nw network) *rig {
	log := slog.New(slog.DiscardHandler)
	r := &rig{t: t, nw: nw}
	r.a = newGoodServer(t, nw, "a.test", "b.test", secretA)
	r.b = newGoodServer(t, nw, "b.test", "a.test", secretB)
	pc, err := gateway.NewPairConfig(
		map[string]string{"a.test": r.a.ln.Addr().String()},
		map[string]string{"b.test": r.b.ln.Addr().String()},
		"hostile-suite-dialback-secret")
	if err != nil {
		t.Fatal(err)
	}
	s := &pc.A.S2S
	s.ConnectTimeout = config.D(connectTimeout)
	s.MaxConnsPerAddress = maxConns
	s.StanzaRate = stanzaRate
	s.StanzaBurst = stanzaBurst
	s.MaxTextSize = maxTextSize
	s.AllowFrom = []string{"127.0.0.1", attackerIP + "/32"}
	pc.A.Link.BatchWindow = config.D(10 * time.Millisecond)
	pc.B.Link.BatchWindow = config.D(10 * time.Millisecond)
	pc.B.Link.ReconnectMin = config.D(100 * time.Millisecond)
	pc.A.Link.ReconnectMin = config.D(100 * time.Millisecond)

	lnLink, err := nw.linkListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.linkB = lnLink.Addr().String()
	r.keyB = pc.KeyB.Public().(ed25519.PublicKey)
	s2sB, err := nw.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if r.gb, err = gateway.New(pc.B, gateway.Options{Logger: log, PrivateKey: pc.KeyB, LinkListener: lnLink, S2SListener: s2sB, S2SDial: nw.dialer()}); err != nil {
		t.Fatal(err)
	}
	s2sA, err := nw.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if r.ga, err = gateway.New(pc.A, gateway.Options{Logger: log, PrivateKey: pc.KeyA, LinkDial: nw.linkDial(r.linkB), S2SListener: s2sA, S2SDial: nw.dialer()}); err != nil {
		t.Fatal(err)
	}
	r.s2sA = r.ga.S2SAddr().String()
	r.a.wire(r.s2sA, secretA, log)
	r.b.wire(r.gb.S2SAddr().String(), secretB, log)
	return r
}

// conv is one attacker connection; everything read is kept in buf.
type conv struct {
	c   net.Conn
	buf bytes.Buffer
	eof bool
}

// dialFrom connects from the address ip, as an attacker.
func (r *rig) dialFrom(ip, addr string) (*conv, error) {
	c, err := r.nw.dialFrom(ip, addr)
	if err != nil {
		return nil, err
	}
	return &conv{c: c}, nil
}

// until reads until buf holds sub, the peer closes, or d passes.
func (v *conv) until(sub string, d time.Duration) error {
	deadline := time.Now().Add(d)
	p := make([]byte, 32<<10)
	for !strings.Contains(v.buf.String(), sub) {
		if v.eof {
			return fmt.Errorf("closed before %q (got %q)", sub, tail(v.buf.String()))
		}
		_ = v.c.SetReadDeadline(deadline)
		n, err := v.c.Read(p)
		v.buf.Write(p[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				v.eof = true
				continue
			}
			return fmt.Errorf("waiting for %q: %w (got %q)", sub, err, tail(v.buf.String()))
		}
	}
	return nil
}

// closed reads until the peer closes (or d passes: an error).
func (v *conv) closed(d time.Duration) error {
	_ = v.until("\x00never\x00", d)
	if !v.eof {
		return fmt.Errorf("still open after %v (got %q)", d, tail(v.buf.String()))
	}
	return nil
}

func (v *conv) write(s string) { _, _ = v.c.Write([]byte(s)) }

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

func tail(s string) string {
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

const streamNS = "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"

// header is a stream header from an initiating server ("" from: none).
func header(from, to string) string {
	h := "<?xml version='1.0'?><stream:stream " + streamNS
	if from != "" {
		h += " from='" + from + "'"
	}
	if to != "" {
		h += " to='" + to + "'"
	}
	return h + " version='1.0'>"
}

var (
	streamErrRE = regexp.MustCompile(`<stream:error><([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-streams'`)
	idRE        = regexp.MustCompile(`<stream:stream [^>]* id='([^']+)'`)
)

// expectStreamError waits for the stream error cond, the stream end and
// the connection close.
func (v *conv) expectStreamError(cond string) (string, error) {
	if err := v.closed(5 * time.Second); err != nil {
		return "", err
	}
	m := streamErrRE.FindStringSubmatch(v.buf.String())
	if m == nil {
		return "closed without a stream error", fmt.Errorf("no stream error in %q", tail(v.buf.String()))
	}
	got := "<" + m[1] + "/>, stream closed"
	if m[1] != cond {
		return got, fmt.Errorf("stream error %s, want %s", m[1], cond)
	}
	if !strings.HasSuffix(v.buf.String(), "</stream:stream>") {
		return got, fmt.Errorf("no </stream:stream> after the error: %q", tail(v.buf.String()))
	}
	return got, nil
}

// open connects as an attacker and sends a stream header to b.test from
// a.test, reading the features.
func (r *rig) open() (*conv, error) {
	v, err := r.dialFrom(attackerIP, r.s2sA)
	if err != nil {
		return nil, err
	}
	v.write(header("a.test", "b.test"))
	if err := v.until("</stream:features>", 5*time.Second); err != nil {
		v.c.Close()
		return nil, err
	}
	return v, nil
}

// auth opens a stream and authenticates it as a.test with a.test's secret:
// a local server that passed dialback and then misbehaves.
func (r *rig) auth() (*conv, error) {
	v, err := r.open()
	if err != nil {
		return nil, err
	}
	m := idRE.FindStringSubmatch(v.buf.String())
	if m == nil {
		v.c.Close()
		return nil, fmt.Errorf("no stream id in %q", v.buf.String())
	}
	v.write("<db:result from='a.test' to='b.test'>" + s2s.DialbackKey(secretA, "b.test", "a.test", m[1]) + "</db:result>")
	if err := v.until("type='valid'", 5*time.Second); err != nil {
		v.c.Close()
		return nil, fmt.Errorf("dialback: %w", err)
	}
	return v, nil
}

// refuse sends input (after our own header, or after authenticating) and
// expects the stream error cond.
func (r *rig) refuse(how, input, cond string) (string, error) {
	var (
		v   *conv
		err error
	)
	switch how {
	case "auth":
		v, err = r.auth()
	case "open":
		v, err = r.open()
	case "stranger": // from an address not on allow_from
		v, err = r.dialFrom(strangerIP, r.s2sA)
	default: // raw: input is everything
		v, err = r.dialFrom(attackerIP, r.s2sA)
	}
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	go v.write(input) // may block on a refused big input until the close
	return v.expectStreamError(cond)
}

func msg(from, to, id, extra string) string {
	return "<message from='" + from + "' to='" + to + "' id='" + id + "'><body>x</body>" + extra + "</message>"
}

// hcase is one attack.
type hcase struct {
	name string
	want string
	run  func(r *rig) (got string, err error)
	// counters of gateway A (Snapshot.Events) that the refusal must raise
	counts []string
}

func refusal(name, how, input, cond, detail string) hcase {
	c := hcase{name: name, want: "<" + cond + "/>", counts: []string{"stream-error:" + cond}}
	if detail != "" {
		c.want += " (" + detail + ")"
		c.counts = append(c.counts, "limit:"+detail)
	}
	c.run = func(r *rig) (string, error) { return r.refuse(how, input, cond) }
	return c
}

func cases() []hcase {
	billion := "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>" +
		"<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>" +
		"<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>" +
		"<!ENTITY lol9 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>]>" +
		"<stream:stream " + streamNS + " to='b.test' version='1.0'><message from='a@a.test' to='b@b.test'><body>&lol9;</body></message>"
	a, b := "alice@a.test/x", "bob@b.test"
	return []hcase{
		refusal("garbage-bytes", "raw", "\x00\x01\x02\xff\xfe garbage", "not-well-formed", ""),
		refusal("http-request", "raw", "GET / HTTP/1.1\r\nHost: gateway\r\n\r\n", "not-well-formed", ""),
		refusal("billion-laughs", "raw", billion, "restricted-xml", "restricted-xml"),
		refusal("doctype-after-header", "open", "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", "restricted-xml", "restricted-xml"),
		refusal("external-entity-ref", "open", msg(a, b, "h-xxe", "<x>&xxe;</x>"), "restricted-xml", "restricted-xml"),
		refusal("comment", "auth", "<!-- hello -->", "restricted-xml", "restricted-xml"),
		refusal("processing-instruction", "auth", "<?php system('id'); ?>", "restricted-xml", "restricted-xml"),
		refusal("client-stream-namespace", "raw", strings.Replace(header("a.test", "b.test"), "jabber:server'", "jabber:client'", 1), "invalid-namespace", ""),
		refusal("wrong-stream-element", "raw", "<stream xmlns='jabber:server' to='b.test'>", "invalid-namespace", ""),
		refusal("unsupported-version", "raw", strings.Replace(header("a.test", "b.test"), " version='1.0'>", " version='2.0'>", 1), "unsupported-version", ""),
		refusal("stream-to-unknown-domain", "raw", header("a.test", "c.test"), "host-unknown", ""),
		refusal("stream-without-to", "raw", header("a.test", ""), "host-unknown", ""),
		refusal("stream-from-a-jid", "raw", header("mallory@a.test", "b.test"), "invalid-from", ""),
		refusal("stream-spoofing-remote-domain", "raw", header("b.test", "b.test"), "invalid-from", "peer-domain"),
		refusal("dialback-for-foreign-domain", "open", "<db:result from='evil.test' to='b.test'>00</db:result>", "invalid-from", "peer-domain"),
		refusal("stanza-before-dialback", "open", msg(a, b, "h-early", ""), "not-authorized", ""),
		{name: "dialback-wrong-key-spoofing-local", want: "db:result invalid, then <not-authorized/>",
			counts: []string{"in-refused:invalid", "stream-error:not-authorized"}, run: (*rig).wrongKey},
		refusal("spoofed-from-after-auth", "auth", msg("eve@evil.test", b, "h-spoof", ""), "invalid-from", ""),
		refusal("invalid-from-jid", "auth", msg("al ice@a.test", b, "h-badfrom", ""), "invalid-from", ""),
		{name: "invalid-to-jid", want: "jid-malformed bounce, stream kept",
			counts: []string{"in-refused:jid-malformed"}, run: (*rig).badTo},
		refusal("stanza-without-to", "auth", "<message from='alice@a.test' id='h-noto'/>", "improper-addressing", ""),
		refusal("stanza-to-unknown-domain", "auth", msg(a, "bob@c.test", "h-c", ""), "host-unknown", ""),
		refusal("client-namespace-stanza", "auth", "<message xmlns='jabber:client' from='alice@a.test' to='bob@b.test'/>", "unsupported-stanza-type", ""),
		refusal("unknown-element", "auth", "<exploit xmlns='urn:evil'>"+strings.Repeat("x", 100000), "unsupported-stanza-type", ""),
		refusal("stream-restart-inside-stream", "auth", strings.TrimPrefix(header("a.test", "b.test"), "<?xml version='1.0'?>"), "unsupported-stanza-type", ""),
		refusal("nesting-10000", "auth", "<message from='alice@a.test' to='bob@b.test'>"+strings.Repeat("<a>", 10000)+strings.Repeat("</a>", 10000)+"</message>", "policy-violation", "depth"),
		refusal("mismatched-tags", "auth", "<message from='alice@a.test' to='bob@b.test'><body></message>", "not-well-formed", ""),
		refusal("invalid-utf8", "auth", msg(a, b, "h-utf8", "<x>\xc3\x28\xff</x>"), "not-well-formed", ""),
		{name: "unclosed-stream", want: "half a stanza, hang up: stream dropped, nothing delivered",
			counts: []string{"in-close"}, run: (*rig).unclosed},
		{name: "repeated-stream-restarts", want: "30 streams opened and closed, each answered",
			counts: []string{"in-open"}, run: (*rig).restarts},
		{name: "starttls-not-offered", want: "<failure/> and close",
			counts: []string{"in-refused:starttls-not-offered"}, run: (*rig).starttls},
		{name: "dialback-verify-probe", want: "db:verify answered invalid",
			counts: []string{"verify-answer"}, run: (*rig).verifyProbe},
		{name: "silent-connection", want: "<connection-timeout/> after connect_timeout",
			counts: []string{"stream-error:connection-timeout", "limit:connect-timeout"}, run: func(r *rig) (string, error) { return r.slow(false) }},
		{name: "slowloris-header", want: "<connection-timeout/> after connect_timeout",
			counts: []string{"stream-error:connection-timeout", "limit:connect-timeout"}, run: func(r *rig) (string, error) { return r.slow(true) }},
		{name: "connection-flood", want: fmt.Sprintf("%d admitted, the rest <policy-violation/>", maxConns),
			counts: []string{"stream-error:policy-violation", "limit:conns-per-address"}, run: (*rig).connFlood},
		refusal("address-not-allowed", "stranger", "", "policy-violation", "address-not-allowed"),
		{name: "stanza-flood", want: fmt.Sprintf("throttled to %d/s, all delivered", stanzaRate),
			counts: []string{"limit:stanza-rate"}, run: (*rig).flood},
		{name: "link-garbage", want: "handshake fails, link keeps its connection", run: func(r *rig) (string, error) {
			junk := make([]byte, 4096)
			_, _ = rand.Read(junk)
			// Not a TLS record type: about one run in 10,000 the random
			// bytes began like a record of 4-18 KB (type 21 or 22, version
			// below 0x1000), and the gateway rightly waited for the rest,
			// up to the link's 60 s handshake timeout, longer than the 5 s
			// linkRaw allows.
			junk[0] = 0
			return r.linkRaw(string(junk))
		}},
		{name: "link-http-request", want: "handshake fails, link keeps its connection", run: func(r *rig) (string, error) {
			return r.linkRaw("GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
		}},
		{name: "link-peer-with-wrong-key", want: "handshake refused, no application data", run: (*rig).linkWrongKey},
		{name: "link-no-client-certificate", want: "handshake refused, no application data", run: (*rig).linkNoCert},
		{name: "link-idle-connections", want: "10 silent connections, link keeps its connection", run: (*rig).linkIdle},
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d='%d'", i, i)
	}
	return b.String()
}

// wrongKey claims a.test (a local domain) with a key made from another
// secret: the real a.test server says invalid; a stanza then is refused.
func (r *rig) wrongKey() (string, error) {
	v, err := r.open()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	id := idRE.FindStringSubmatch(v.buf.String())[1]
	v.write("<db:result from='a.test' to='b.test'>" + s2s.DialbackKey("guessed-secret", "b.test", "a.test", id) + "</db:result>")
	if err := v.until("type='invalid'", 5*time.Second); err != nil {
		return "", err
	}
	v.write(msg("alice@a.test/x", "bob@b.test", "h-wrongkey", ""))
	got, err := v.expectStreamError("not-authorized")
	return "db:result invalid, then " + got, err
}

// badTo sends a stanza with a malformed recipient on an authenticated
// stream: it is bounced with jid-malformed and the stream carries on.
func (r *rig) badTo() (string, error) {
	v, err := r.auth()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	v.write(msg("alice@a.test/x", "bob@@b.test", "h-badto", ""))
	v.write(msg("alice@a.test/x", "bob@b.test", "h-after-badto", ""))
	deadline := time.Now().Add(5 * time.Second)
	for {
		errs, after := r.a.errorsFor("h-badto"), r.b.otherCount("h-after-badto")
		if len(errs) > 0 && after == 1 {
			if errs[0] != "jid-malformed" {
				return "bounce " + errs[0], fmt.Errorf("bounce condition %v", errs)
			}
			return "jid-malformed bounce to the sender, next stanza delivered", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("bounce %v, next stanza delivered %d times", errs, after)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unclosed sends half a stanza and hangs up.
func (r *rig) unclosed() (string, error) {
	v, err := r.auth()
	if err != nil {
		return "", err
	}
	v.write("<message from='alice@a.test/x' to='bob@b.test' id='h-half'><bo")
	v.c.Close()
	r.nw.settle(200 * time.Millisecond) // then nothing more happens, in a bubble
	if n := r.b.otherCount("h-half"); n != 0 {
		return "", fmt.Errorf("half stanza delivered %d times", n)
	}
	return "stream dropped, nothing delivered", nil
}

// restarts opens and closes 30 streams in a row.
func (r *rig) restarts() (string, error) {
	const n = 30
	for i := range n {
		v, err := r.open()
		if err != nil {
			return "", fmt.Errorf("stream %d: %w", i, err)
		}
		v.write("</stream:stream>")
		err = v.closed(5 * time.Second)
		v.c.Close()
		if err != nil {
			return "", fmt.Errorf("stream %d: %w", i, err)
		}
		if !strings.HasSuffix(v.buf.String(), "</stream:stream>") {
			return "", fmt.Errorf("stream %d not answered with </stream:stream>: %q", i, tail(v.buf.String()))
		}
	}
	return fmt.Sprintf("%d streams opened and closed, each answered", n), nil
}

func (r *rig) starttls() (string, error) {
	v, err := r.open()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	v.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if err := v.closed(5 * time.Second); err != nil {
		return "", err
	}
	if !strings.Contains(v.buf.String(), "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") {
		return "", fmt.Errorf("no <failure/>: %q", tail(v.buf.String()))
	}
	return "<failure/> and close", nil
}

// verifyProbe asks the gateway to confirm a made-up dialback key.
func (r *rig) verifyProbe() (string, error) {
	v, err := r.open()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	v.write("<db:verify from='a.test' to='b.test' id='guess'>0123456789abcdef</db:verify>")
	if err := v.until("type='", 5*time.Second); err != nil {
		return "", err
	}
	if !strings.Contains(v.buf.String(), "type='invalid'") {
		return "", fmt.Errorf("answer %q", tail(v.buf.String()))
	}
	return "db:verify answered invalid", nil
}

// slow connects and says nothing, or trickles its header a byte at a time.
func (r *rig) slow(trickle bool) (string, error) {
	v, err := r.dialFrom(attackerIP, r.s2sA)
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	if trickle {
		go func() {
			for _, b := range []byte(header("a.test", "b.test")) {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := v.c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
	}
	got, err := v.expectStreamError("connection-timeout")
	took := time.Since(start)
	got = fmt.Sprintf("%s after %.1fs", got, took.Seconds())
	if err == nil && (took < connectTimeout-100*time.Millisecond || took > connectTimeout+2*time.Second) {
		err = fmt.Errorf("closed after %v, connect_timeout is %v", took, connectTimeout)
	}
	return got, err
}

// connFlood opens 4×maxConns connections from one address at once.
func (r *rig) connFlood() (string, error) {
	const n = 4 * maxConns
	var conns []*conv
	defer func() {
		for _, v := range conns {
			v.c.Close()
		}
	}()
	for range n {
		v, err := r.dialFrom(attackerIP, r.s2sA)
		if err != nil {
			return "", err
		}
		conns = append(conns, v)
	}
	var wg sync.WaitGroup
	for _, v := range conns {
		wg.Go(func() { _ = v.until("</stream:stream>", 300*time.Millisecond) })
	}
	wg.Wait()
	refused, open := 0, 0
	for _, v := range conns {
		m := streamErrRE.FindStringSubmatch(v.buf.String())
		switch {
		case m != nil && m[1] == "policy-violation":
			refused++
		case v.buf.Len() == 0 && !v.eof:
			open++
		}
	}
	got := fmt.Sprintf("%d admitted, %d <policy-violation/>", open, refused)
	if open != maxConns || refused != n-maxConns {
		return got, fmt.Errorf("want %d admitted, %d refused", maxConns, n-maxConns)
	}
	for _, v := range conns {
		v.c.Close()
	}
	conns = nil
	// The slots are free again once those streams are gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := r.open()
		if err == nil {
			v.c.Close()
			break
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("no stream admitted after the flood: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return got + ", admitted again after", nil
}

// flood sends many stanzas at once on one authenticated stream.
func (r *rig) flood() (string, error) {
	const n = 150
	v, err := r.auth()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	start := time.Now()
	var b strings.Builder
	for i := range n {
		b.WriteString(msg("alice@a.test/x", "bob@b.test", fmt.Sprintf("h-flood-%d", i), ""))
	}
	go v.write(b.String())
	deadline := start.Add(15 * time.Second)
	for {
		done := 0
		for i := range n {
			done += min(1, r.b.otherCount(fmt.Sprintf("h-flood-%d", i)))
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%d of %d flood stanzas delivered", done, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	got := fmt.Sprintf("%d stanzas in %.2fs (%.0f/s), all delivered", n, took.Seconds(), float64(n)/took.Seconds())
	floor := time.Duration(n-stanzaBurst) * time.Second / stanzaRate * 9 / 10
	if took < floor {
		return got, fmt.Errorf("took %v, throttling allows no less than %v", took, floor)
	}
	return got, nil
}

// linkState waits briefly for gateway B's link counters to settle and
// checks that the pair's connection was never replaced.
func (r *rig) linkAfter(before gateway.Snapshot, fails uint64) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.gb.Snapshot()
		if s.Link.HandshakeFailures >= before.Link.HandshakeFailures+fails {
			if s.Link.Connects != before.Link.Connects || !s.Link.Up || !r.ga.Snapshot().Link.Up {
				return "", fmt.Errorf("link connects %d -> %d, up %v", before.Link.Connects, s.Link.Connects, s.Link.Up)
			}
			return fmt.Sprintf("%d handshake failures counted, link kept its connection", s.Link.HandshakeFailures-before.Link.HandshakeFailures), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("handshake failures %d -> %d, want +%d", before.Link.HandshakeFailures, s.Link.HandshakeFailures, fails)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) linkRaw(input string) (string, error) {
	before := r.gb.Snapshot()
	v, err := r.dialFrom(attackerIP, r.linkB)
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	go v.write(input)
	if err := v.closed(5 * time.Second); err != nil {
		return "", err
	}
	return r.linkAfter(before, 1)
}

// linkTLS runs a TLS client against gateway B's link port and expects it
// to be refused without one byte of application data.
func (r *rig) linkTLS(cfg *tls.Config) (string, error) {
	before := r.gb.Snapshot()
	v, err := r.dialFrom(attackerIP, r.linkB)
	if err != nil {
		return "", err
	}
	tc := tls.Client(v.c, cfg)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	herr := tc.Handshake()
	var n int
	if herr == nil { // TLS 1.3: the server checks the client's certificate after the client's Finished
		n, herr = tc.Read(make([]byte, 1024))
	}
	if herr == nil || n > 0 {
		return "", fmt.Errorf("got %d bytes of application data, err %v", n, herr)
	}
	got, err := r.linkAfter(before, 1)
	return "refused (" + short(herr) + "), " + got, err
}

func short(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func (r *rig) linkWrongKey() (string, error) {
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	cfg, err := link.TLSConfig(stranger, r.keyB)
	if err != nil {
		return "", err
	}
	return r.linkTLS(cfg)
}

func (r *rig) linkNoCert() (string, error) {
	return r.linkTLS(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"isthmus/1"}, MinVersion: tls.VersionTLS13})
}

func (r *rig) linkIdle() (string, error) {
	const n = 10
	before := r.gb.Snapshot()
	var conns []*conv
	for range n {
		v, err := r.dialFrom(attackerIP, r.linkB)
		if err != nil {
			return "", err
		}
		conns = append(conns, v)
	}
	r.nw.settle(500 * time.Millisecond) // good traffic flows meanwhile
	for _, v := range conns {
		v.c.Close()
	}
	got, err := r.linkAfter(before, n)
	return fmt.Sprintf("%d silent connections held 0.5s; ", n) + got, err
}

// TestHostile runs every case against one running pair while the good
// servers send a message each way every 10 ms, all in memory in a
// testing/synctest bubble: time is virtual, so the timings the cases check
// (connect_timeout, throttling) are exact, and what a case shows did not
// happen is checked once every goroutine is blocked.
func TestHostile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prof, _ := emu.Lookup("lan")
		lan := emu.NewLink(prof, 1)
		defer lan.Close()
		hostile(t, network{mem: emu.NewNet(lan)})
	})
}

// TestHostileTCP runs the suite over real sockets on loopback.
func TestHostileTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile suite over TCP: not in -short")
	}
	hostile(t, network{})
}

func hostile(t *testing.T, nw network) {
	ctx, cancel := context.WithCancel(context.Background())
	r := newRig(t, nw)
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	run("gateway a", r.ga.Run)
	run("gateway b", r.gb.Run)
	run("server a", func(ctx context.Context) error { return r.a.srv.Serve(ctx, r.a.ln) })
	run("server b", func(ctx context.Context) error { return r.b.srv.Serve(ctx, r.b.ln) })
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-trafficCtx.Done():
				return
			case <-tick.C:
				r.a.send()
				r.b.send()
			}
		}
	})
	defer func() {
		stopTraffic()
		cancel()
		r.a.pool.Close()
		r.b.pool.Close()
		wg.Wait()
	}()

	// Warm up: the first messages cross both ways.
	if err := r.waitDelivered(0, 1, 0, 1, 20*time.Second); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	// The in-memory run prints one line per case (make test shows them);
	// the run over TCP logs them (-v) and prints its summary.
	report, suffix := func(f string, a ...any) { fmt.Printf(f, a...) }, ""
	if nw.mem == nil {
		report, suffix = func(f string, a ...any) { t.Logf(f, a...) }, " over TCP"
	}
	passed := 0
	all := append(append(cases(), xmlCases()...), codecCases()...) // xml_test.go, codec_test.go
	for i, c := range all {
		a0, b0 := r.a.sentCount(), r.b.sentCount()
		before := r.ga.Snapshot()
		start := time.Now()
		got, err := c.run(r)
		for time.Since(start) < 50*time.Millisecond { // some good traffic during every case
			time.Sleep(10 * time.Millisecond)
		}
		a1, b1 := r.a.sentCount(), r.b.sentCount()
		if err == nil {
			err = r.waitCounts(before, c.counts)
		}
		derr := r.waitDelivered(a0, a1, b0, b1, 15*time.Second)
		status := "PASS"
		if err != nil || derr != nil {
			status = "FAIL"
			t.Errorf("case %s: %v; delivery: %v", c.name, err, derr)
		} else {
			passed++
		}
		report("hostile %2d %-34s want %-45s got %s | good a->b %d/%d b->a %d/%d | %s\n",
			i+1, c.name, c.want, got, a1-a0, a1-a0, b1-b0, b1-b0, status)
	}
	fmt.Printf("hostile%s: %d of %d cases passed\n", suffix, passed, len(all))
	if len(all) < 30 {
		t.Errorf("only %d cases", len(all))
	}
	r.a.mu.Lock()
	r.b.mu.Lock()
	if len(r.a.bounced) > 0 || len(r.b.bounced) > 0 {
		t.Errorf("good servers' stanzas bounced: a %v b %v", r.a.bounced, r.b.bounced)
	}
	r.b.mu.Unlock()
	r.a.mu.Unlock()
}

// waitCounts waits until each of gateway A's event counters named in keys
// has grown since before.
func (r *rig) waitCounts(before gateway.Snapshot, keys []string) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		now := r.ga.Snapshot()
		var missing []string
		for _, k := range keys {
			if now.Events[k] <= before.Events[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("counters not raised: %v", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDelivered waits until the good messages a0..a1 (a.test -> b.test) and
// b0..b1 (b.test -> a.test) have each arrived exactly once.
func (r *rig) waitDelivered(a0, a1, b0, b1 int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		na, dupA := r.b.delivered("a.test", a0, a1)
		nb, dupB := r.a.delivered("b.test", b0, b1)
		if dupA || dupB {
			return fmt.Errorf("duplicates: a->b %v b->a %v", dupA, dupB)
		}
		if na == a1-a0 && nb == b1-b0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delivered a->b %d/%d, b->a %d/%d", na, a1-a0, nb, b1-b0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
