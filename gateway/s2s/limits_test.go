package s2s

import (
	"bytes"
	"encoding/xml"
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

// newRigWith is newRig with b.test's Server configuration changed by mod.
func newRigWith(t *testing.T, lim Limits, mod func(*ServerConfig)) *rig {
	r := newRig(t, lim)
	cfg := ServerConfig{
		Hosts:   func(d string) bool { return d == "b.test" },
		Resolve: func(d string) (string, error) { return d + ":5269", nil },
		Dial:    r.dialA,
		Secret:  testSecret,
		Limits:  lim,
		Deliver: r.sink.deliver,
		Events:  r.sink.event,
	}
	mod(&cfg)
	r.b = NewServer(cfg)
	return r
}

func (k *sink) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.got)
}

func (k *sink) hasDetail(kind, cond, detail string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.ContainsFunc(k.events, func(e Event) bool {
		return string(e.Kind) == kind && (cond == "" || e.Reason == cond) && e.Detail == detail
	})
}

func TestServerLimitErrors(t *testing.T) {
	const st = "<message from='alice@a.test' to='bob@b.test'>"
	for _, tc := range []struct {
		name, input, cond, detail string
	}{
		{"entity", st + "<body>&xxe;</body></message>", SErrRestrictedXML, "restricted-xml"},
		{"doctype", "<!DOCTYPE x>", SErrRestrictedXML, "restricted-xml"},
		{"nested stream", "<stream:stream xmlns='jabber:server' to='b.test'>", SErrUnsupportedStanzaType, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Limits{MaxStanzaSize: 4096, MaxDepth: 8, MaxAttrs: 8, MaxTextSize: 512})
			defer r.stop()
			cl := r.auth()
			go func() { _, _ = cl.c.Write([]byte(tc.input)) }()
			cl.expectStreamError(tc.cond)
			if !r.sink.hasDetail("stream-error", tc.cond, tc.detail) {
				t.Errorf("no stream-error %s/%s event: %+v", tc.cond, tc.detail, r.sink.events)
			}
			if n := r.sink.count(); n != 0 {
				t.Errorf("delivered %d", n)
			}
		})
	}
}

func TestServerHeaderChecks(t *testing.T) {
	hdr := func(attrs string) string {
		return "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " + attrs + ">"
	}
	for _, tc := range []struct{ name, input, cond, detail string }{
		{"version 2", hdr("to='b.test' version='2.0'"), SErrUnsupportedVersion, ""},
		{"version junk", hdr("to='b.test' version='one'"), SErrUnsupportedVersion, ""},
		{"from a jid", hdr("from='u@a.test' to='b.test' version='1.0'"), SErrInvalidFrom, ""},
		{"from not a peer", hdr("from='c.test' to='b.test' version='1.0'"), SErrInvalidFrom, "peer-domain"},
		{"not xml", "GET / HTTP/1.1\r\n\r\n", SErrNotWellFormed, ""},
		{"xml 2.0", "<?xml version='2.0'?>" + hdr("to='b.test'"), SErrNotWellFormed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigWith(t, Limits{}, func(c *ServerConfig) { c.Peers = func(d string) bool { return d == "a.test" } })
			defer r.stop()
			c1, c2 := net.Pipe()
			cl := &client{t: t, c: c1, done: make(chan error, 1), rd: newXMLReader(c1, Limits{})}
			r.wg.Go(func() { cl.done <- r.b.ServeConn(r.ctx, c2) })
			go func() { _, _ = c1.Write([]byte(tc.input)) }()
			if _, err := cl.rd.header(); err != nil {
				t.Fatalf("header: %v", err)
			}
			cl.expectStreamError(tc.cond)
			if !r.sink.hasDetail("stream-error", tc.cond, tc.detail) {
				t.Errorf("no stream-error %s/%s event: %+v", tc.cond, tc.detail, r.sink.events)
			}
		})
	}
}

func TestServerPeersRefuseDialback(t *testing.T) {
	r := newRigWith(t, Limits{}, func(c *ServerConfig) { c.Peers = func(d string) bool { return d == "a.test" } })
	defer r.stop()
	cl := r.open("b.test")
	cl.next()
	cl.write(string(dbResult("c.test", "b.test", "key", "", "")))
	cl.expectStreamError(SErrInvalidFrom)
	if !r.sink.hasDetail("stream-error", SErrInvalidFrom, "peer-domain") {
		t.Errorf("events %+v", r.sink.events)
	}
}

func TestServerRequireTLS(t *testing.T) {
	srvTLS, _ := testTLS(t)
	r := newRigWith(t, Limits{}, func(c *ServerConfig) { c.TLS, c.RequireTLS = srvTLS, true })
	defer r.stop()
	cl := r.open("b.test")
	f := cl.next().Node
	if f == nil || f.child(NSTLS, "starttls") == nil || f.child(NSTLS, "starttls").child(NSTLS, "required") == nil {
		t.Fatalf("features %+v: want <starttls><required/>", f)
	}
	cl.write(string(dbResult("a.test", "b.test", DialbackKey(testSecret, "b.test", "a.test", cl.id), "", "")))
	cl.expectStreamError(SErrPolicyViolation)
	if !r.sink.hasDetail("stream-error", SErrPolicyViolation, "tls-required") {
		t.Errorf("events %+v", r.sink.events)
	}
}

func TestServerRejectMalformedTo(t *testing.T) {
	var mu sync.Mutex
	var replies []Stanza
	r := newRigWith(t, Limits{}, func(c *ServerConfig) {
		c.Reject = func(st Stanza) { mu.Lock(); replies = append(replies, st); mu.Unlock() }
	})
	defer r.stop()
	cl := r.auth()
	cl.write("<message from='alice@a.test/x' to='bob@@b.test' id='m1'><body>x</body></message>")
	cl.write("<message from='alice@a.test/x' to='bob@b.test' id='m2'/>")
	r.sink.wait(t, "m2", func() bool { return len(r.sink.got) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(replies) != 1 || replies[0].From != "b.test" || replies[0].To != "alice@a.test/x" || replies[0].Type != "error" ||
		!strings.Contains(string(replies[0].Raw), "<jid-malformed ") {
		t.Fatalf("replies %+v", replies)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	if r.sink.got[0].ID != "m2" {
		t.Errorf("delivered %+v", r.sink.got)
	}
}

func TestServerAdmission(t *testing.T) {
	allow := true
	var mu sync.Mutex
	r := newRigWith(t, Limits{MaxConnsPerAddr: 2}, func(c *ServerConfig) {
		c.Allow = func(net.Addr) bool { mu.Lock(); defer mu.Unlock(); return allow }
	})
	defer r.stop()
	refused := func(detail string) {
		t.Helper()
		c1, c2 := net.Pipe()
		defer c1.Close()
		done := make(chan error, 1)
		go func() { done <- r.b.ServeConn(r.ctx, c2) }()
		cl := &client{t: t, c: c1, done: done, rd: newXMLReader(c1, Limits{})}
		if _, err := cl.rd.header(); err != nil {
			t.Fatalf("header: %v", err)
		}
		cl.expectStreamError(SErrPolicyViolation)
		if !r.sink.hasDetail("stream-error", SErrPolicyViolation, detail) {
			t.Errorf("no %s event: %+v", detail, r.sink.events)
		}
	}
	a, b := r.auth(), r.open("b.test")
	refused("conns-per-address")
	// A slot frees when a stream ends.
	a.write(streamClose)
	if _, err := a.rd.next(); !errors.Is(err, errStreamEnd) {
		t.Fatalf("close: %v", err)
	}
	a.expectEOF()
	c := r.open("b.test")
	_, _ = b, c
	mu.Lock()
	allow = false
	mu.Unlock()
	refused("address-not-allowed")
}

func TestServerStanzaRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Limits{StanzaRate: 10, StanzaBurst: 5, Keepalive: time.Hour, IdleTimeout: time.Hour})
		defer r.stop()
		cl := r.auth()
		start := time.Now()
		go func() {
			for range 25 {
				_, _ = cl.c.Write([]byte("<message from='alice@a.test' to='bob@b.test'/>"))
			}
		}()
		synctest.Wait()
		if n := r.sink.count(); n != 5 {
			t.Fatalf("%d delivered at once, want the burst of 5", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.sink.count(); n != 15 {
			t.Fatalf("%d delivered after 1s, want 15", n)
		}
		for r.sink.count() < 25 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("25 stanzas took %v, want 2s", d)
		}
		n := 0
		r.sink.mu.Lock()
		defer r.sink.mu.Unlock()
		for _, e := range r.sink.events {
			if e.Kind == "limit" && e.Detail == "stanza-rate" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d stanza-rate events, want 1 per stream", n)
		}
	})
}

func TestServerConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Limits{ConnectTimeout: 5 * time.Second})
		defer r.stop()
		c1, c2 := net.Pipe()
		cl := &client{t: t, c: c1, done: make(chan error, 1), rd: newXMLReader(c1, Limits{})}
		r.conns = append(r.conns, c1)
		r.wg.Go(func() { cl.done <- r.b.ServeConn(r.ctx, c2) })
		start := time.Now()
		_, _ = c1.Write([]byte("<stream:stream xmlns='jabber:server'")) // and no more
		if _, err := cl.rd.header(); err != nil {
			t.Fatalf("header: %v", err)
		}
		cl.expectStreamError(SErrConnectionTimeout)
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("refused after %v, want 5s", d)
		}
	})
}

// FuzzInboundLimits feeds arbitrary bytes to an inbound stream reader with
// small limits: whatever it returns must respect every limit, and every
// refusal must be a stream error or the end of input.
func FuzzInboundLimits(f *testing.F) {
	for _, s := range []string{
		"<message from='a@a.test' to='b@b.test' a='1' b='2'><body>hello</body></message>",
		"<db:result from='a.test' to='b.test'>abc</db:result>",
		"<message><a><b><c><d/></c></b></a></message>",
		"<message><x>&amp;&lt;&#65;&xxe;</x></message>",
		"<!DOCTYPE x [<!ENTITY a 'b'>]>",
		"<presence " + strings.Repeat("a='1' ", 10) + "/>",
		"<iq>" + strings.Repeat("t", 100) + "</iq>",
		"<stream:stream xmlns='jabber:server'>",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxStanzaSize: 512, MaxDepth: 4, MaxAttrs: 6, MaxTextSize: 64}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append(streamHeader("a.test", "b.test", "x"), b...)
		rd := newXMLReader(bytes.NewReader(in), lim)
		rd.inbound = true
		if _, err := rd.header(); err != nil {
			t.Fatalf("header: %v", err)
		}
		for range 1000 {
			el, err := rd.next()
			if err != nil {
				var se *StreamError
				if !errors.As(err, &se) && !errors.Is(err, errStreamEnd) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is not a stream error", err)
				}
				return
			}
			if el.Node != nil && !inboundRoot(el.Node.Name) {
				t.Fatalf("root %v on an inbound stream", el.Node.Name)
			}
			if el.Stanza == nil || el.Fault != nil { // refused: no Raw
				continue
			}
			raw := el.Stanza.Raw
			if len(raw) > lim.MaxStanzaSize {
				t.Fatalf("stanza of %d bytes", len(raw))
			}
			d := xml.NewDecoder(bytes.NewReader(raw))
			depth := 0
			for {
				tok, err := d.Token()
				if err != nil {
					break
				}
				switch tk := tok.(type) {
				case xml.StartElement:
					if depth++; depth > lim.MaxDepth {
						t.Fatalf("depth %d in %q", depth, raw)
					}
					if len(tk.Attr) > lim.MaxAttrs {
						t.Fatalf("%d attributes in %q", len(tk.Attr), raw)
					}
				case xml.EndElement:
					depth--
				case xml.CharData:
					if len(tk) > lim.MaxTextSize {
						t.Fatalf("text of %d bytes in %q", len(tk), raw)
					}
				}
			}
		}
	})
}
