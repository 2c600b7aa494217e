package s2s

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseStanza(t *testing.T) {
	raw := "<iq type='get' id='a&amp;b' from='x@a.test/r' to=\"b.test\"><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
	st, err := ParseStanza([]byte("  \n" + raw + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Stanza{Name: "iq", From: "x@a.test/r", To: "b.test", Type: "get", ID: "a&b", Raw: []byte(raw)}
	if st.Name != want.Name || st.From != want.From || st.To != want.To || st.Type != want.Type || st.ID != want.ID || !bytes.Equal(st.Raw, want.Raw) {
		t.Fatalf("got %+v\nwant %+v", st, want)
	}
	st2, err := ParseStanza(st.Raw)
	if err != nil || string(st2.Raw) != string(st.Raw) || st2.ID != st.ID {
		t.Fatalf("round trip: %+v, %v", st2, err)
	}
	// jabber:server namespace spelled out is fine too.
	if _, err := ParseStanza([]byte("<presence xmlns='jabber:server'/>")); err != nil {
		t.Errorf("explicit jabber:server: %v", err)
	}
	for _, bad := range []string{
		"",
		"   ",
		"<message/><message/>",
		"<foo/>",
		"<message xmlns='jabber:client'/>",
		"<s:message xmlns:s='jabber:server'/>",
		"<message>",
		"<message></presence>",
		"x<message/>",
		"<message/>x",
		"<!-- c --><message/>",
		"<?pi?><message/>",
		"<!DOCTYPE message><message/>",
		"<message>&foo;</message>",
		"<db:result xmlns:db='jabber:server:dialback'/>",
	} {
		if st, err := ParseStanza([]byte(bad)); err == nil {
			t.Errorf("ParseStanza(%q) = %+v, want error", bad, st)
		}
	}
	if _, err := ParseStanza([]byte("<foo/>")); !errors.Is(err, ErrNotStanza) {
		t.Errorf("error %v is not ErrNotStanza", err)
	}
}

func TestDomain(t *testing.T) {
	for in, want := range map[string]string{
		"alice@A.Test/Res": "a.test",
		"b.test":           "b.test",
		"":                 "",
		"@":                "",
		"a@b@c":            "",
		"x@[::1]":          "[::1]",
	} {
		if got := Domain(in); got != want {
			t.Errorf("Domain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorReply(t *testing.T) {
	m, _ := ParseStanza([]byte("<message from='a@a.test/r' to='b@b.test' id='m1' type='chat' xmlns:x='urn:x'><body>hi &lt;</body><x:y/></message>"))
	r, ok := ErrorReply(m, CondRemoteServerNotFound)
	if !ok {
		t.Fatal("message not bounced")
	}
	want := "<message from='b@b.test' to='a@a.test/r' type='error' id='m1' xmlns:x='urn:x'><body>hi &lt;</body><x:y/>" +
		"<error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
	if string(r.Raw) != want {
		t.Errorf("bounce\n%s\nwant\n%s", r.Raw, want)
	}
	p, err := ParseStanza(r.Raw)
	if err != nil || p.From != "b@b.test" || p.To != "a@a.test/r" || p.Type != "error" || p.ID != "m1" || r.Type != "error" || r.From != p.From {
		t.Errorf("bounce parses to %+v (%v), reply %+v", p, err, r)
	}
	if _, ok := ErrorReply(p, CondServiceUnavailable); ok {
		t.Error("an error was bounced")
	}

	iq, _ := ParseStanza([]byte("<iq from='a@a.test' to='b.test' id='q' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"))
	r, ok = ErrorReply(iq, CondRemoteServerTimeout)
	if !ok || string(r.Raw) != "<iq from='b.test' to='a@a.test' type='error' id='q'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>" {
		t.Errorf("iq bounce %q %v", r.Raw, ok)
	}
	for _, s := range []string{
		"<iq from='a@a.test' to='b.test' id='q' type='result'/>",
		"<presence from='a@a.test' to='b@b.test'/>",
		"<presence from='a@a.test' to='b@b.test' type='unavailable'/>",
		"<message to='b@b.test'/>",
	} {
		st, err := ParseStanza([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := ErrorReply(st, CondServiceUnavailable); ok {
			t.Errorf("%s bounced as %s", s, r.Raw)
		}
	}
	sub, _ := ParseStanza([]byte("<presence from='a@a.test' to='b@b.test' type='subscribe'/>"))
	if r, ok := ErrorReply(sub, CondRemoteServerNotFound); !ok || !strings.Contains(string(r.Raw), "type='error'") {
		t.Errorf("subscribe bounce %q %v", r.Raw, ok)
	}
	// Attribute values are escaped.
	q, _ := ParseStanza([]byte(`<message from="a@a.test/&apos;&lt;" to='b@b.test' id="&quot;"/>`))
	r, _ = ErrorReply(q, CondServiceUnavailable)
	if p, err := ParseStanza(r.Raw); err != nil || p.To != "a@a.test/'<" || p.ID != `"` {
		t.Errorf("escaped bounce %q: %+v %v", r.Raw, p, err)
	}
}

func TestDialbackKey(t *testing.T) {
	// The inputs of XEP-0185's example script (xmpp.org wiki); the value
	// was computed with Python's hmac and hashlib.
	got := DialbackKey("s3cr3tf0rd14lb4ck", "domain2.tld", "domain1.tld", "D60000229F")
	if got != "5e598fae34b90be084fb6a4a8a543ceb33549140bac9d829ef8d734d900616e4" {
		t.Errorf("key %s", got)
	}
}

func FuzzParseStanza(f *testing.F) {
	for _, s := range []string{
		"<message from='a@a.test' to='b@b.test' id='1'><body>x</body></message>",
		"<iq type='get'><q xmlns='urn:q'/></iq>",
		"<presence/>",
		"<message xmlns='jabber:server'><x:y xmlns:x='urn:x'>&amp;</x:y></message>",
		"  <presence a='&#x41;'/>  ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStanza(b)
		if err != nil {
			return
		}
		st2, err := ParseStanza(st.Raw)
		if err != nil {
			t.Fatalf("reparse of %q: %v", st.Raw, err)
		}
		if st2.Name != st.Name || st2.From != st.From || st2.To != st.To || st2.Type != st.Type || st2.ID != st.ID || !bytes.Equal(st2.Raw, st.Raw) {
			t.Fatalf("reparse %+v != %+v", st2, st)
		}
		if r, ok := ErrorReply(st, CondServiceUnavailable); ok {
			p, err := ParseStanza(r.Raw)
			if err != nil {
				t.Fatalf("bounce %q does not parse: %v", r.Raw, err)
			}
			if p.From != st.To || p.To != st.From || p.Type != "error" || p.ID != st.ID {
				t.Fatalf("bounce %+v of %+v", p, st)
			}
		}
	})
}

// FuzzStreamReader feeds arbitrary bytes after a valid stream header.
func FuzzStreamReader(f *testing.F) {
	for _, s := range []string{
		"<message from='a@a.test' to='b@b.test'><body>x</body></message> <presence/>",
		"<db:result from='a.test' to='b.test'>abc</db:result>",
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
		"</stream:stream>",
		"<!-- x -->",
		"<message><a><b><c/></b></a></message>",
		"<message><db:x stream:y='1'/></message>",
		"<message id='a' id='b'/><message><x xmlns:a='u' xmlns:b='u' a:z='' b:z=''/></message>",
		"<message>&#xD800;<![CDATA[]]]]><x\x01/></message>",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxStanzaSize: 512, MaxDepth: 8}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append(streamHeader("a.test", "b.test", "x"), b...)
		rd := newXMLReader(bytes.NewReader(in), lim)
		if _, err := rd.header(); err != nil {
			t.Fatalf("header: %v", err)
		}
		for range 1000 {
			el, err := rd.next()
			if err != nil {
				return
			}
			if st := el.Stanza; st != nil && el.Fault == nil {
				if len(st.Raw) > lim.MaxStanzaSize {
					t.Fatalf("stanza of %d bytes", len(st.Raw))
				}
				if !bytes.HasPrefix(st.Raw, []byte("<")) || !bytes.HasSuffix(st.Raw, []byte(">")) {
					t.Fatalf("raw %q", st.Raw)
				}
				// What a stream accepts stands alone and parses the same.
				if p, err := ParseStanza(st.Raw); err != nil || p.From != st.From || p.To != st.To || p.ID != st.ID || p.Type != st.Type {
					t.Fatalf("ParseStanza(%q) = %+v, %v; stream gave %+v", st.Raw, p, err, st)
				}
			}
		}
	})
}

// FuzzServerConn runs a whole inbound stream on arbitrary input: the
// server must end the stream and return.
func FuzzServerConn(f *testing.F) {
	f.Add([]byte("<message from='a@a.test' to='b@b.test'/>"))
	f.Add([]byte("<db:verify from='x.test' to='b.test' id='1'>k</db:verify></stream:stream>"))
	f.Add([]byte("<db:result from='a.test' to='b.test'>k</db:result>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewServer(ServerConfig{
			Hosts:   func(d string) bool { return d == "b.test" },
			Resolve: func(string) (string, error) { return "", errors.New("no") },
			Limits:  Limits{MaxStanzaSize: 1024, ConnectTimeout: time.Second},
		})
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- s.ServeConn(t.Context(), c2) }()
		go func() {
			_, _ = c1.Write(append(streamHeader("a.test", "b.test", ""), b...))
			c1.Close()
		}()
		_, _ = io.Copy(io.Discard, c1)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("ServeConn did not return")
		}
	})
}
