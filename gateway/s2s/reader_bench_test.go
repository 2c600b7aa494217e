package s2s

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkReadStanzas reads typical stanzas (a chat message, a presence
// with caps, an iq) from an inbound stream.
func BenchmarkReadStanzas(b *testing.B) {
	one := "<message from='alice@a.test/r' to='bob@b.test' id='m1' type='chat' xml:lang='en'><body>Hello there, how are you? &amp; &#x263A;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>" +
		"<presence from='alice@a.test/r' to='bob@b.test'><show>away</show><status>out</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>" +
		"<iq from='alice@a.test/r' to='bob@b.test' id='i1' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
	const n = 300
	in := append(streamHeader("a.test", "b.test", "x"), strings.Repeat(one, n)...)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rd := newXMLReader(bytes.NewReader(in), Limits{})
		rd.inbound = true
		if _, err := rd.header(); err != nil {
			b.Fatal(err)
		}
		for range 3 * n {
			if el, err := rd.next(); err != nil || el.Stanza == nil {
				b.Fatal(err)
			}
		}
	}
}
