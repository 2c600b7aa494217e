package compress

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// roundTrip encodes each stanza as its own batch and decodes it.
func roundTrip(t testing.TB, stanzas [][]byte) [][]byte {
	t.Helper()
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i, st := range stanzas {
		b, err := enc.Encode([][]byte{st})
		if err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
		got, err := dec.Decode(bytes.Clone(b))
		if err != nil {
			t.Fatalf("stanza %d %q: %v", i, st, err)
		}
		out = append(out, got[0])
	}
	return out
}

func TestCanonicalForm(t *testing.T) {
	cases := []struct{ in, want string }{
		// kept byte for byte
		{`<message from='a@x/r' to='b@y' type='chat' id='1'><body>hi &amp; &lt;3 &gt;</body></message>`, ""},
		{`<presence from='a@x/r' to='b@y'></presence>`, ""},
		{`<iq type='get' id='x' to='y'><query xmlns='jabber:iq:version'/></iq>`, ""},
		{`<message to='b@y'><body>don&apos;t &quot;quote&quot;</body></message>`, ""},
		{`<message to='b@y'><body>don't "quote"</body></message>`, ""},
		{`<message to="b@y" type="chat"><body>x</body></message>`, ""},
		{`<message to='b@y' xml:lang='en'><body>  two  spaces
and a newline	tab </body></message>`, ""},
		{`<message to='a&amp;b@y'/>`, ""},
		// canonicalized: same infoset, other bytes
		{`<message  to = 'b@y'   type='chat' ><body >x</body ></message >`, `<message to='b@y' type='chat'><body>x</body></message>`},
		{`<message to='b@y' a='&#65;&#x42;"&gt;'/>`, `<message to='b@y' a='AB&quot;&gt;'/>`},
		{`<message to='b@y'><body>a>b "q" &apos;</body></message>`, `<message to='b@y'><body>a&gt;b "q" '</body></message>`},
		// not representable: raw, byte for byte
		{`<message to='b@y'><body><![CDATA[<x>]]></body></message>`, ""},
		{`<message to='b@y'><!-- c --></message>`, ""},
		{`<message xmlns:foo='urn:x' to='b@y'><foo:bar/></message>`, ""},
		{"<message to='b@y'><body>a\r\nb</body></message>", ""},
		{"<message to='b@y' a='x\ny'/>", ""},
		{` <message to='b@y'/>`, ""},
		{`<message to='b@y'>`, ""},
		{`not xml`, ""},
		{"\xff\xfe", ""},
	}
	var in [][]byte
	for _, c := range cases {
		in = append(in, []byte(c.in))
	}
	got := roundTrip(t, in)
	for i, c := range cases {
		want := c.want
		if want == "" {
			want = c.in
		}
		if string(got[i]) != want {
			t.Errorf("%q:\n got %q\nwant %q", c.in, got[i], want)
		}
		if c.want != "" && !EqualInfoset(got[i], in[i]) {
			t.Errorf("%q: infoset changed", c.in)
		}
	}
}

// randomStanza builds a stanza with random structure, names, values and
// text, including characters that need escaping.
func randomStanza(r *rand.Rand) []byte {
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	value := func() string {
		switch r.Intn(9) {
		case 0:
			return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Intn(65536), r.Intn(65536), r.Intn(65536), r.Int63n(1<<48))
		case 1:
			return fmt.Sprintf("%x", r.Int63())
		case 2:
			return pick("a@b.test", "a@b.test/res", "b.test", "x@y/z/w", "@bad", "a@", "u@d/")
		case 3:
			return fmt.Sprintf("2023-11-%02dT%02d:%02d:%02d%sZ", 1+r.Intn(28), r.Intn(24), r.Intn(60), r.Intn(60), pick("", ".1", ".123456"))
		case 4:
			return pick("chat", "get", "urn:xmpp:ping", "", "sha-1")
		case 5:
			b := make([]byte, r.Intn(30))
			r.Read(b)
			return strings.NewReplacer("\uFFFE", "", "\uFFFF", "").Replace(strings.ToValidUTF8(string(b), "?"))
		case 6:
			return pick("aB3dE5fG7hJ9kL", "R2ZT+MKtOpgjzL8NM+Enh4ipUgo=", "abc", "Zm9v")
		default:
			return pick("a<b", "a&b", "'q'", `"dq"`, "x>y", "é ü 🛰️")
		}
	}
	esc := func(s string, attr bool) string {
		var b strings.Builder
		for _, c := range s {
			switch {
			case c == '&':
				b.WriteString("&amp;")
			case c == '<':
				b.WriteString("&lt;")
			case c == '>':
				b.WriteString("&gt;")
			case attr && c == '\'':
				b.WriteString("&apos;")
			case c < 0x20 && c != '\n' && c != '\t' || attr && c < 0x20 || c == '\r':
				fmt.Fprintf(&b, "&#%d;", c+0x100)
			default:
				b.WriteRune(c)
			}
		}
		return b.String()
	}
	var b strings.Builder
	var elem func(depth int, name string)
	elem = func(depth int, name string) {
		b.WriteString("<" + name)
		used := map[string]bool{}
		for i := r.Intn(5); i > 0; i-- {
			a := pick("from", "to", "id", "type", "xmlns", "node", "ver", "jid", "stamp", "x-custom")
			if used[a] {
				continue
			}
			used[a] = true
			b.WriteString(" " + a + "='" + esc(value(), true) + "'")
		}
		if depth > 3 || r.Intn(3) == 0 {
			b.WriteString("/>")
			return
		}
		b.WriteString(">")
		for i := r.Intn(4); i > 0; i-- {
			if r.Intn(2) == 0 {
				b.WriteString(esc(value(), false))
			} else {
				elem(depth+1, pick("body", "c", "x", "item", "custom-el", "delay"))
			}
		}
		b.WriteString("</" + name + ">")
	}
	elem(0, pick("message", "presence", "iq"))
	return []byte(b.String())
}

func TestRoundTripGenerated(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	var in [][]byte
	for i := 0; i < 3000; i++ {
		st := randomStanza(r)
		in = append(in, st)
		if r.Intn(3) == 0 { // fan-out: the same stanza to another recipient
			in = append(in, bytes.Replace(st, []byte("to='"), []byte("to='z"), 1))
		}
	}
	got := roundTrip(t, in)
	for i := range in {
		if !bytes.Equal(got[i], in[i]) && !EqualInfoset(got[i], in[i]) {
			t.Fatalf("stanza %d changed:\n got %s\nwant %s", i, got[i], in[i])
		}
		_, errIn := s2s.ParseStanza(in[i])
		_, errOut := s2s.ParseStanza(got[i])
		if (errIn == nil) != (errOut == nil) {
			t.Fatalf("stanza %d: ParseStanza in %v, out %v\n%s\n%s", i, errIn, errOut, in[i], got[i])
		}
	}
}

func TestTemplatesCarryOnlyTheRecipient(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	base := `<presence from='erin@a.test/gajim.H0GHS61F' to='%s@b.test'><show>away</show><status>On watch</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='R2ZT+MKtOpgjzL8NM+Enh4ipUgo='/></presence>`
	who := []string{"hana", "oskar", "lena", "vera"}
	for i := range 8 {
		st := fmt.Appendf(nil, base, who[i%4])
		b, err := enc.Encode([][]byte{st})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(b))
		if err != nil || !bytes.Equal(got[0], st) {
			t.Fatalf("%d: %v %s", i, err, got)
		}
		if i >= 4 && len(b) > 6 { // recipients known: slot and JID reference
			t.Errorf("fan-out copy %d took %d bytes (%x), want <= 6", i, len(b), b)
		}
	}
}

// TestRepeatsCostOnlyWhatChanged: a fan-out in roster order costs one byte
// a copy; a message between a known pair, in a known shape (from the third
// on: the second has a new shape), costs its shape and pair ranks, the id's
// bytes and the body's table rank (origin-id repeating the id costs
// nothing).
func TestRepeatsCostOnlyWhatChanged(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	send := func(st []byte) int {
		t.Helper()
		b, err := enc.Encode([][]byte{st})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(b))
		if err != nil || !bytes.Equal(got[0], st) {
			t.Fatalf("%v: got %s\nwant %s", err, got, st)
		}
		return len(b)
	}
	pres := `<presence to='%s@b.test' xml:lang='en' from='erin@a.test/gajim.H0GHS61F' id='%s'><show>away</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='R2ZT+MKtOpgjzL8NM+Enh4ipUgo='/></presence>`
	who := []string{"hana", "oskar", "lena", "vera", "ulla"}
	for round, id := range []string{"a1b2c3d4e5f60718", "0918f6e5d4c3b2a1"} {
		for i, w := range who {
			n := send(fmt.Appendf(nil, pres, w, id))
			if i > 0 && round == 1 && n != 1 {
				t.Errorf("round %d, fan-out copy %d: %d bytes, want 1 (the template reference)", round, i, n)
			}
		}
	}
	msg := `<message from='erin@a.test/gajim.H0GHS61F' to='hana@b.test' type='chat' id='%s'><body>ok</body><origin-id xmlns='urn:xmpp:sid:0' id='%[1]s'/></message>`
	uuids := []string{"5f0c6a4e-2b8d-4c1e-9a7f-3d2e1b0c9a8f", "c167b965-d421-4f36-a881-058912a80aa6", "8a26d3b7-3b20-4a37-ac56-d1307779d471"}
	for i, u := range uuids {
		n := send(fmt.Appendf(nil, msg, u))
		if i > 0 && n > 1+1+16+1 {
			t.Errorf("message %d: %d bytes, want <= 19 (shape, pair, UUID, body reference)", i, n)
		}
	}
}

// TestTimestampsCrossAsDifferences: XEP-0082 stamps (with and without
// fractions, forwards and backwards in time) come back exactly, and a stamp
// a few seconds from the previous one costs one byte.
func TestTimestampsCrossAsDifferences(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	st := `<presence from='a@a.test/r' to='b@b.test' id='%d'><delay xmlns='urn:xmpp:delay' stamp='%s'/></presence>`
	stamps := []string{"2026-11-30T04:27:17Z", "2026-11-30T04:27:19Z", "2026-11-30T04:27:18.123Z", "1970-01-01T00:00:00Z", "2099-12-31T23:59:59.000001Z", "2026-11-30T04:27:20Z", "2026-11-30T04:27:23Z"}
	var sizes []int
	for i, s := range stamps {
		in := fmt.Appendf(nil, st, i, s)
		b, err := enc.Encode([][]byte{in})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(b))
		if err != nil || !bytes.Equal(got[0], in) {
			t.Fatalf("%s: %v %s", s, err, got)
		}
		sizes = append(sizes, len(b))
	}
	// The last two have the same shape and the same size of id; the stamp
	// 3 s after its predecessor takes one byte, the one 73 years before its
	// predecessor six.
	if d := sizes[5] - sizes[6]; d != 5 {
		t.Errorf("stamps 73 years and 3 s from the previous one: blocks of %d and %d bytes, want a difference of 5", sizes[5], sizes[6])
	}
}

// Two senders' presences fanned out interleaved to the same contacts' full
// JIDs (ejabberd does so): once each template has seen the order of its
// fan-out, every copy is one byte, its recipient predicted from the
// template's last one, with that contact's last resource.
func TestFanOutInterleavedFullJIDs(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	defer dec.Close()
	for round := range 3 {
		for j := range 5 {
			for s := range 2 {
				st := fmt.Appendf(nil, `<presence from='s%d@a.test/r' to='u%d@b.test/res%d'><status>round %d</status></presence>`, s, j, j, round)
				blk, err := enc.Encode([][]byte{st})
				if err != nil {
					t.Fatal(err)
				}
				out, err := dec.Decode(bytes.Clone(blk))
				if err != nil || !bytes.Equal(out[0], st) {
					t.Fatalf("round %d, sender %d, contact %d: %q, %v", round, s, j, out, err)
				}
				if round == 2 && j > 0 && len(blk) != 1 {
					t.Errorf("round %d, sender %d, contact %d: a %d-byte block, want 1: % x", round, s, j, len(blk), blk)
				}
			}
		}
	}
}
