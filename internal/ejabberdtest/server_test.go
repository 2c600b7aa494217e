package ejabberdtest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/testpki"
)

// TestStart starts ejabberd with a test CA and the DNS stub, and checks
// that it answers a stream header on its S2S port with STARTTLS required.
func TestStart(t *testing.T) {
	Require(t)
	dns, err := StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	ca, err := testpki.NewCA("isthmus test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), "ej", "ej.test", "conference.ej.test")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{Domain: "ej.test", MUC: true, DNSPort: dns.Port(), TLS: files, Users: map[string]string{"u1": "pw1"}})
	c, err := net.Dial("tcp", s.S2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='x.test' to='ej.test' version='1.0'>"))
	var got []byte
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(string(got), "</stream:features>") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading the answer (%q): %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !strings.Contains(string(got), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>") {
		t.Errorf("S2S STARTTLS is not required: %s", got)
	}
}
