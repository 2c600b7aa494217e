package s2s

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const testSecret = "test-secret"

// rig is a Server for b.test whose dialback verifications reach a Server
// for a.test through net.Pipe, so it also runs inside synctest bubbles.
type rig struct {
	t      *testing.T
	a, b   *Server
	sink   *sink
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []net.Conn // client ends, closed by stop
}

func newRig(t *testing.T, lim Limits) *rig {
	r := &rig{t: t, sink: newSink()}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.a = NewServer(ServerConfig{Hosts: func(d string) bool { return d == "a.test" }, Secret: testSecret, Limits: lim})
	r.b = NewServer(ServerConfig{
		Hosts:   func(d string) bool { return d == "b.test" },
		Resolve: func(d string) (string, error) { return d + ":5269", nil },
		Dial:    r.dialA,
		Secret:  testSecret,
		Limits:  lim,
		Deliver: r.sink.deliver,
		Events:  r.sink.event,
	})
	return r
}

// dialA connects to the a.test Server.
func (r *rig) dialA(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != "a.test:5269" {
		return nil, errors.New("unknown address " + addr)
	}
	c1, c2 := net.Pipe()
	r.wg.Go(func() { _ = r.a.ServeConn(r.ctx, c2) })
	return c1, nil
}

// stop ends the servers and waits for every stream.
func (r *rig) stop() {
	r.cancel()
	for _, c := range r.conns {
		c.Close()
	}
	r.wg.Wait()
}

// client is a scripted initiating server talking to the rig's b.test.
type client struct {
	t    *testing.T
	c    net.Conn
	rd   *xmlReader
	id   string
	done chan error // ServeConn's result
}

// open connects to b.test and exchanges headers, the stream claiming to
// go to 'to'.
func (r *rig) open(to string) *client {
	c1, c2 := net.Pipe()
	cl := &client{t: r.t, c: c1, done: make(chan error, 1)}
	r.conns = append(r.conns, c1)
	r.wg.Go(func() { cl.done <- r.b.ServeConn(r.ctx, c2) })
	cl.write(string(streamHeader("a.test", to, "")))
	cl.rd = newXMLReader(c1, Limits{}.withDefaults())
	hdr, err := cl.rd.header()
	if err != nil {
		r.t.Fatalf("header: %v", err)
	}
	cl.id = (&node{Attr: hdr.Attr}).attr("id")
	return cl
}

// auth opens a stream and authenticates a.test -> b.test.
func (r *rig) auth() *client {
	cl := r.open("b.test")
	f := cl.next()
	if f.Node == nil || f.Node.Name.Local != "features" || f.Node.child(NSDBFeature, "dialback") == nil {
		r.t.Fatalf("features: %+v", f.Node)
	}
	cl.write(string(dbResult("a.test", "b.test", DialbackKey(testSecret, "b.test", "a.test", cl.id), "", "")))
	res := cl.next()
	if res.Node == nil || res.Node.Name.Local != "result" || res.Node.attr("type") != "valid" {
		r.t.Fatalf("dialback answer: %+v", res.Node)
	}
	return cl
}

func (cl *client) write(s string) {
	cl.t.Helper()
	if _, err := cl.c.Write([]byte(s)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

func (cl *client) next() element {
	cl.t.Helper()
	el, err := cl.rd.next()
	if err != nil {
		cl.t.Fatalf("read: %v", err)
	}
	return el
}

// expectStreamError reads until a stream error and checks its condition,
// then the stream end and the socket close.
func (cl *client) expectStreamError(cond string) {
	cl.t.Helper()
	for {
		el, err := cl.rd.next()
		if err != nil {
			cl.t.Fatalf("want stream error %s, got %v", cond, err)
		}
		if n := el.Node; n != nil && n.Name.Space == NSStream && n.Name.Local == "error" {
			var se *StreamError
			if !errors.As(peerStreamError(n), &se) || se.Cond != cond {
				cl.t.Fatalf("stream error %v, want %s", peerStreamError(n), cond)
			}
			break
		}
	}
	if _, err := cl.rd.next(); !errors.Is(err, errStreamEnd) {
		cl.t.Fatalf("after stream error: %v, want stream end", err)
	}
	cl.expectEOF()
}

func (cl *client) expectEOF() {
	cl.t.Helper()
	buf := make([]byte, 16)
	n, err := cl.c.Read(buf)
	if err == nil {
		cl.t.Fatalf("read %q after the stream end, want EOF", buf[:n])
	}
	if err := <-cl.done; err != nil {
		var se *StreamError
		if !errors.As(err, &se) {
			cl.t.Errorf("ServeConn: %v", err)
		}
	}
}

func TestServerDeliversVerified(t *testing.T) {
	r := newRig(t, Limits{})
	defer r.stop()
	cl := r.auth()
	raw := "<message to='bob@B.test' from='alice@a.test/x' id='1'><body>hi</body></message>"
	cl.write(raw + "   \n")
	r.sink.wait(t, "delivery", func() bool { return len(r.sink.got) == 1 })
	if got := string(r.sink.got[0].Raw); got != raw {
		t.Errorf("Raw = %q, want %q", got, raw)
	}
	cl.write(streamClose)
	if _, err := cl.rd.next(); !errors.Is(err, errStreamEnd) {
		t.Fatalf("want stream end, got %v", err)
	}
	cl.expectEOF()
}

func TestServerStreamErrors(t *testing.T) {
	big := "<db:result from='a.test' to='b.test'>" + strings.Repeat("x", 10<<20) + "</db:result>"
	tests := []struct {
		name  string
		auth  bool
		to    string
		input string
		cond  string
	}{
		{"unknown host", false, "c.test", "", SErrHostUnknown},
		{"before dialback", false, "b.test", "<message from='alice@a.test' to='bob@b.test'/>", SErrNotAuthorized},
		{"spoofed from", true, "b.test", "<message from='eve@evil.test' to='bob@b.test'/>", SErrInvalidFrom},
		{"no from", true, "b.test", "<message to='bob@b.test'/>", SErrImproperAddressing},
		{"stanza to unknown host", true, "b.test", "<message from='alice@a.test' to='bob@c.test'/>", SErrHostUnknown},
		{"oversize dialback", true, "b.test", big, SErrPolicyViolation},
		{"too deep dialback", true, "b.test", "<db:result from='a.test' to='b.test'>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</db:result>", SErrPolicyViolation},
		{"nesting past any stanza", true, "b.test", "<message from='alice@a.test' to='bob@b.test'>" + strings.Repeat("<a>", 2000), SErrPolicyViolation},
		{"comment", true, "b.test", "<!-- hello -->", SErrRestrictedXML},
		{"processing instruction", true, "b.test", "<?foo bar?>", SErrRestrictedXML},
		{"unknown element", true, "b.test", "<foo xmlns='urn:foo'/>", SErrUnsupportedStanzaType},
		{"client namespace", true, "b.test", "<message xmlns='jabber:client' from='alice@a.test' to='bob@b.test'/>", SErrUnsupportedStanzaType},
		{"bad xml", true, "b.test", "<message from='alice@a.test' to='bob@b.test'></iq>", SErrNotWellFormed},
		{"text", true, "b.test", "hello <", SErrNotWellFormed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Limits{MaxStanzaSize: 4096})
			defer r.stop()
			var cl *client
			if tc.auth {
				cl = r.auth()
			} else {
				cl = r.open(tc.to)
			}
			go func() { _, _ = cl.c.Write([]byte(tc.input)) }() // may block on a refused big stanza
			cl.expectStreamError(tc.cond)
			r.sink.mu.Lock()
			defer r.sink.mu.Unlock()
			if len(r.sink.got) != 0 {
				t.Errorf("delivered %d stanzas", len(r.sink.got))
			}
			if !slices.ContainsFunc(r.sink.events, func(e Event) bool { return e.Kind == "stream-error" && e.Reason == tc.cond }) {
				t.Errorf("no stream-error event for %s: %+v", tc.cond, r.sink.events)
			}
		})
	}
}

func TestServerHeaderErrors(t *testing.T) {
	for _, tc := range []struct{ header, cond string }{
		{"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='b.test' version='1.0'>", SErrInvalidNamespace},
		{"<!DOCTYPE foo><stream:stream xmlns='jabber:server'>", SErrRestrictedXML},
		{"<stream xmlns='jabber:server'>", SErrInvalidNamespace},
	} {
		r := newRig(t, Limits{})
		c1, c2 := net.Pipe()
		cl := &client{t: t, c: c1, done: make(chan error, 1), rd: newXMLReader(c1, Limits{}.withDefaults())}
		r.wg.Go(func() { cl.done <- r.b.ServeConn(r.ctx, c2) })
		go func() { _, _ = c1.Write([]byte(tc.header)) }()
		if _, err := cl.rd.header(); err != nil {
			t.Fatalf("%s: header: %v", tc.header, err)
		}
		cl.expectStreamError(tc.cond)
		r.stop()
	}
}

func TestServerAnswersVerifyOnAuthenticatedStream(t *testing.T) {
	r := newRig(t, Limits{})
	defer r.stop()
	cl := r.auth()
	good := DialbackKey(testSecret, "x.test", "b.test", "SID1")
	cl.write(string(dbVerify("x.test", "b.test", "SID1", good, "")))
	cl.write(string(dbVerify("x.test", "b.test", "SID2", good, "")))
	cl.write("<verify xmlns='jabber:server:dialback' from='x.test' to='c.test' id='SID1'>" + good + "</verify>")
	for _, want := range []struct{ id, typ string }{{"SID1", "valid"}, {"SID2", "invalid"}, {"SID1", "invalid"}} {
		n := cl.next().Node
		if n == nil || n.Name.Local != "verify" || n.attr("id") != want.id || n.attr("type") != want.typ {
			t.Fatalf("got %+v, want id %s type %s", n, want.id, want.typ)
		}
	}
	// The stream still carries stanzas afterwards.
	cl.write("<presence from='alice@a.test' to='bob@b.test'/>")
	r.sink.wait(t, "presence", func() bool { return len(r.sink.got) == 1 })
}

func TestServerRefusesWrongKey(t *testing.T) {
	r := newRig(t, Limits{})
	defer r.stop()
	cl := r.open("b.test")
	cl.next() // features
	cl.write(string(dbResult("a.test", "b.test", DialbackKey("other", "b.test", "a.test", cl.id), "", "")))
	n := cl.next().Node
	if n == nil || n.Name.Local != "result" || n.attr("type") != "invalid" {
		t.Fatalf("got %+v, want invalid", n)
	}
	cl.write("<message from='alice@a.test' to='bob@b.test'/>")
	cl.expectStreamError(SErrNotAuthorized)
}

func TestServerVerifyUnreachable(t *testing.T) {
	r := newRig(t, Limits{})
	defer r.stop()
	cl := r.open("b.test")
	cl.next()
	cl.write(string(dbResult("nowhere.test", "b.test", "abc", "", "")))
	n := cl.next().Node
	if n == nil || n.attr("type") != "error" || dbErrorCond(n) != CondRemoteServerNotFound {
		t.Fatalf("got %+v, want error remote-server-not-found", n)
	}
}

func TestServerShutdownClosesCleanly(t *testing.T) {
	r := newRig(t, Limits{})
	cl := r.auth()
	r.cancel()
	if _, err := cl.rd.next(); !errors.Is(err, errStreamEnd) {
		t.Fatalf("want stream end, got %v", err)
	}
	cl.write(streamClose)
	cl.expectEOF()
	r.wg.Wait()
}

func TestServerKeepaliveAndIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Limits{Keepalive: time.Minute, IdleTimeout: 5 * time.Minute})
		defer r.stop()
		cl := r.auth()
		start := time.Now()
		buf := make([]byte, 1)
		for i := 1; i <= 2; i++ {
			if _, err := io.ReadFull(cl.c, buf); err != nil || buf[0] != ' ' {
				t.Fatalf("read %q, %v; want a space", buf, err)
			}
			if d := time.Since(start); d != time.Duration(i)*time.Minute {
				t.Errorf("keepalive %d after %v, want %dm", i, d, i)
			}
		}
		// Our whitespace and the peer's do not count as activity; a stanza does.
		cl.write("  ")
		cl.write("<presence from='alice@a.test' to='bob@b.test'/>")
		mark := time.Now()
		for {
			el, err := cl.rd.next()
			if errors.Is(err, errStreamEnd) {
				break
			}
			if err != nil || el.Node != nil || el.Stanza != nil {
				t.Fatalf("got %+v, %v", el, err)
			}
		}
		if d := time.Since(mark); d != 5*time.Minute {
			t.Errorf("idle close %v after the last stanza, want 5m", d)
		}
		cl.write(streamClose)
		cl.expectEOF()
	})
}
