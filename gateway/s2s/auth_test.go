package s2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/testpki"
)

// pki is a test CA with certificates that serve as TLS server and client
// certificates, as S2S needs (SASL EXTERNAL verifies the client's).
type pki struct {
	roots *x509.CertPool
	ca    *testpki.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := testpki.NewCA("s2s test CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	return &pki{roots: roots, ca: ca}
}

func (p *pki) cert(t *testing.T, domains ...string) tls.Certificate {
	t.Helper()
	c, k, err := p.ca.Issue(domains...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// fakeReceiver is a scripted receiving server for b.test that requires
// STARTTLS, verifies client certificates against the test CA, and offers
// SASL EXTERNAL (as ejabberd and Prosody do for a valid certificate) and
// dialback.
type fakeReceiver struct {
	t       *testing.T
	tls     *tls.Config
	refuse  bool // answer <auth/> with <failure/>
	mu      sync.Mutex
	authzid []string // decoded <auth/> payloads
	results int      // db:result requests
	got     []string // stanza ids delivered
	err     error
	done    chan struct{}
}

func (f *fakeReceiver) serve(c net.Conn) {
	defer close(f.done)
	defer c.Close()
	err := f.run(c)
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeReceiver) run(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tlsDone, authed := false, false
	for {
		rd := newXMLReader(conn, Limits{}.withDefaults())
		if _, err := rd.header(); err != nil {
			return err
		}
		feats := "<dialback xmlns='" + NSDBFeature + "'/>"
		switch {
		case authed:
			feats = ""
		case !tlsDone:
			feats = "<starttls xmlns='" + NSTLS + "'><required/></starttls>"
		case len(conn.(*tls.Conn).ConnectionState().PeerCertificates) > 0:
			feats = "<mechanisms xmlns='" + NSSASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>" + feats
		}
		out := append(streamHeader("b.test", "a.test", newStreamID()), "<stream:features>"+feats+"</stream:features>"...)
		if _, err := conn.Write(out); err != nil {
			return err
		}
		for restart := false; !restart; {
			el, err := rd.next()
			if err != nil {
				if errors.Is(err, errStreamEnd) {
					return nil
				}
				return err
			}
			if el.Stanza != nil {
				f.mu.Lock()
				f.got = append(f.got, el.Stanza.ID)
				f.mu.Unlock()
				continue
			}
			n := el.Node
			switch {
			case n.Name.Space == NSTLS && n.Name.Local == "starttls":
				if _, err := conn.Write([]byte("<proceed xmlns='" + NSTLS + "'/>")); err != nil {
					return err
				}
				tc := tls.Server(conn, f.tls)
				if err := tc.Handshake(); err != nil {
					return err
				}
				conn, tlsDone, restart = tc, true, true
			case n.Name.Space == NSSASL && n.Name.Local == "auth":
				id, _ := base64.StdEncoding.DecodeString(n.Text)
				f.mu.Lock()
				f.authzid = append(f.authzid, n.attr("mechanism")+" "+string(id))
				f.mu.Unlock()
				leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
				if f.refuse || leaf.VerifyHostname(string(id)) != nil {
					if _, err := conn.Write([]byte("<failure xmlns='" + NSSASL + "'><not-authorized/></failure>")); err != nil {
						return err
					}
					continue
				}
				if _, err := conn.Write([]byte("<success xmlns='" + NSSASL + "'/>")); err != nil {
					return err
				}
				authed, restart = true, true
			case n.Name.Space == NSDialback && n.Name.Local == "result":
				f.mu.Lock()
				f.results++
				f.mu.Unlock()
				if _, err := conn.Write(dbResult("b.test", "a.test", "", "valid", "")); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unexpected <%s xmlns=%q>", n.Name.Local, n.Name.Space)
			}
		}
	}
}

// saslRig runs a Pool for a.test whose TLS config holds clientCert
// against a fakeReceiver, sends one message and returns the receiver.
func saslRig(t *testing.T, p *pki, refuse bool, clientCert ...tls.Certificate) *fakeReceiver {
	t.Helper()
	f := &fakeReceiver{t: t, refuse: refuse, done: make(chan struct{}), tls: &tls.Config{
		Certificates: []tls.Certificate{p.cert(t, "b.test")},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    p.roots,
		MinVersion:   tls.VersionTLS12,
	}}
	sink := newSink()
	pool := NewPool(PoolConfig{
		Resolve: func(string) (string, error) { return "b.test:5269", nil },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c1, c2 := net.Pipe()
			go f.serve(c2)
			return c1, nil
		},
		TLS:        &tls.Config{RootCAs: p.roots, Certificates: clientCert, MinVersion: tls.VersionTLS12},
		RequireTLS: true,
		Secret:     testSecret,
		Bounce:     sink.bounce,
		Events:     sink.event,
	})
	pool.Send(msg("alice@a.test", "bob@b.test", "m1", "hello"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.got)
		f.mu.Unlock()
		sink.mu.Lock()
		bounced := slices.Clone(sink.bounced)
		events := slices.Clone(sink.events)
		sink.mu.Unlock()
		if n == 1 {
			break
		}
		if len(bounced) > 0 || time.Now().After(deadline) {
			t.Fatalf("not delivered: bounced %v, events %+v, receiver error %v", bounced, events, f.err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pool.Close()
	<-f.done
	return f
}

// TestSASLExternal: a receiving server that offers SASL EXTERNAL after
// STARTTLS gets it from a Pool holding a certificate for its from-domain,
// and no dialback.
func TestSASLExternal(t *testing.T) {
	p := newPKI(t)
	f := saslRig(t, p, false, p.cert(t, "other.test"), p.cert(t, "a.test"))
	if !slices.Equal(f.authzid, []string{"EXTERNAL a.test"}) || f.results != 0 {
		t.Errorf("auth %q, %d db:result; want one EXTERNAL for a.test and no dialback", f.authzid, f.results)
	}
}

// TestSASLExternalFallsBackToDialback: without a certificate for the
// from-domain the Pool does not try EXTERNAL; when the peer refuses it, the
// Pool goes on with dialback on the same stream.
func TestSASLExternalFallsBackToDialback(t *testing.T) {
	p := newPKI(t)
	f := saslRig(t, p, false, p.cert(t, "other.test"))
	if len(f.authzid) != 0 || f.results != 1 {
		t.Errorf("no certificate for a.test: auth %q, %d db:result; want dialback only", f.authzid, f.results)
	}
	f = saslRig(t, p, true, p.cert(t, "a.test"))
	if !slices.Equal(f.authzid, []string{"EXTERNAL a.test"}) || f.results != 1 {
		t.Errorf("EXTERNAL refused: auth %q, %d db:result; want one refused EXTERNAL, then dialback", f.authzid, f.results)
	}
}

// TestVerifyConnectionStartTLS: the authoritative server (a.test) requires
// STARTTLS, as ejabberd does by default: the receiving Server's dialback
// verification connection must do it, or the key cannot be checked.
func TestVerifyConnectionStartTLS(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	for _, verifyTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("VerifyTLS=%v", verifyTLS), func(t *testing.T) {
			pr := newPoolRig(t, Limits{ConnectTimeout: 5 * time.Second})
			defer pr.stop()
			pr.a.cfg.TLS, pr.a.cfg.RequireTLS = srvTLS, true
			pr.b.cfg.TLS = srvTLS
			pr.pool.cfg.TLS = cliTLS
			if verifyTLS {
				pr.b.cfg.VerifyTLS = cliTLS
			}
			pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
			if verifyTLS {
				pr.sink.wait(t, "delivery", func() bool { return len(pr.sink.got) == 1 })
				pr.sink.mu.Lock()
				defer pr.sink.mu.Unlock()
				if !slices.ContainsFunc(pr.sink.events, func(e Event) bool { return e.Kind == "in-auth" }) {
					t.Errorf("no in-auth: %+v", pr.sink.events)
				}
				return
			}
			pr.psink.wait(t, "bounce", func() bool { return len(pr.psink.bounced) == 1 })
			pr.sink.mu.Lock()
			defer pr.sink.mu.Unlock()
			if len(pr.sink.got) != 0 {
				t.Errorf("delivered without a verified key")
			}
		})
	}
}

// TestRequireTLSOutgoing: with RequireTLS a Pool does not authenticate on a
// stream whose peer offers no STARTTLS; it bounces, naming the reason.
func TestRequireTLSOutgoing(t *testing.T) {
	_, cliTLS := testTLS(t)
	pr := newPoolRig(t, Limits{})
	defer pr.stop()
	pr.pool.cfg.TLS, pr.pool.cfg.RequireTLS = cliTLS, true
	pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
	pr.psink.wait(t, "bounce", func() bool { return len(pr.psink.bounced) == 1 })
	pr.psink.mu.Lock()
	defer pr.psink.mu.Unlock()
	if !slices.ContainsFunc(pr.psink.events, func(e Event) bool {
		return e.Kind == "out-fail" && strings.Contains(e.Reason, "does not offer STARTTLS")
	}) {
		t.Errorf("no out-fail naming STARTTLS: %+v", pr.psink.events)
	}
	pr.sink.mu.Lock()
	defer pr.sink.mu.Unlock()
	if len(pr.sink.got) != 0 || pr.sink.hasEvent("in-auth", "", "") {
		t.Errorf("authenticated without TLS")
	}
}

// TestDialbackRouteBackHint: when the receiving server cannot reach the
// authoritative server back (its SRV record or override for our domain
// leads nowhere), the Pool's error names routing, not keys.
func TestDialbackRouteBackHint(t *testing.T) {
	var logBuf syncBuffer
	pr := newPoolRig(t, Limits{})
	defer pr.stop()
	pr.b.cfg.Resolve = func(d string) (string, error) { return "nowhere.invalid:5269", nil }
	pr.b.log = slog.New(slog.NewTextHandler(&logBuf, nil))
	pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
	pr.psink.wait(t, "bounce", func() bool { return len(pr.psink.bounced) == 1 })
	pr.psink.mu.Lock()
	defer pr.psink.mu.Unlock()
	const want = "could not route back to the gateway for a.test (error remote-server-not-found): check its SRV record or connect override for a.test"
	if !slices.ContainsFunc(pr.psink.events, func(e Event) bool { return e.Kind == "out-fail" && strings.Contains(e.Reason, want) }) {
		t.Errorf("no out-fail with %q: %+v", want, pr.psink.events)
	}
	if got := logBuf.String(); !strings.Contains(got, "cannot connect back to a.test's server at nowhere.invalid:5269") {
		t.Errorf("the receiving side's log does not name the failed connection back:\n%s", got)
	}
}

// TestHealthCheckLoggedAtDebug: a connection closed before any stream
// header (a load balancer's or monitor's TCP check) is logged at debug.
func TestHealthCheckLoggedAtDebug(t *testing.T) {
	var logBuf syncBuffer
	srv := NewServer(ServerConfig{
		Hosts:  func(d string) bool { return d == "b.test" },
		Secret: testSecret,
		Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logBuf.String(), "before a stream header") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got := logBuf.String()
	if !strings.Contains(got, "level=DEBUG") || strings.Contains(got, "level=INFO") {
		t.Errorf("health check not logged at debug only:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSASLExternalInbound: a Server with ClientCAs offers SASL EXTERNAL to
// an initiator whose client certificate covers its domain, and the pair
// is authenticated without dialback; a certificate for another domain
// gets no EXTERNAL, and dialback instead.
func TestSASLExternalInbound(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		certFor string
		want    string // in-auth Reason
	}{{"a.test", "sasl-external"}, {"other.test", ""}} {
		t.Run(tc.certFor, func(t *testing.T) {
			pr := newPoolRig(t, Limits{})
			defer pr.stop()
			pr.b.cfg.TLS = &tls.Config{Certificates: []tls.Certificate{p.cert(t, "b.test")}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
			pr.b.cfg.ClientCAs = p.roots
			pr.pool.cfg.TLS = &tls.Config{RootCAs: p.roots, Certificates: []tls.Certificate{p.cert(t, tc.certFor)}, MinVersion: tls.VersionTLS12}
			pr.pool.Send(msg("alice@a.test", "bob@b.test", "1", "x"))
			pr.sink.wait(t, "delivery", func() bool { return len(pr.sink.got) == 1 })
			pr.sink.mu.Lock()
			defer pr.sink.mu.Unlock()
			var auth []string
			for _, e := range pr.sink.events {
				if e.Kind == "in-auth" {
					auth = append(auth, e.Reason)
				}
			}
			if !slices.Equal(auth, []string{tc.want}) {
				t.Errorf("in-auth reasons %q, want [%q]", auth, tc.want)
			}
		})
	}
}

// TestSASLExternalNotOffered: an <auth/> on a stream that was not offered
// EXTERNAL (no TLS, no certificate) is refused with <failure/> and
// authenticates nothing; a stanza then gets <not-authorized/>.
func TestSASLExternalNotOffered(t *testing.T) {
	r := newRig(t, Limits{})
	defer r.stop()
	r.b.cfg.ClientCAs = newPKI(t).roots
	cl := r.open("b.test")
	if f := cl.next(); f.Node == nil || f.Node.child(NSSASL, "mechanisms") != nil {
		t.Fatalf("features %+v: EXTERNAL offered without TLS", f.Node)
	}
	cl.write("<auth xmlns='" + NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte("a.test")) + "</auth>")
	if n := cl.next().Node; n == nil || n.Name.Space != NSSASL || n.Name.Local != "failure" || n.child(NSSASL, "invalid-mechanism") == nil {
		t.Fatalf("answer %+v, want <failure><invalid-mechanism/>", n)
	}
	cl.write(string(msg("alice@a.test", "bob@b.test", "1", "x").Raw))
	cl.expectStreamError(SErrNotAuthorized)
}
