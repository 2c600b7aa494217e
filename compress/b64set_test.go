package compress

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var writeB64 = flag.Bool("write-b64", false, "regenerate testdata/b64/*.xml.gz (base64-heavy stanzas: vCard photos, PEP avatars, OMEMO)")

// wrapB64 breaks s into lines of n characters joined by brk (n = 0: no
// breaks), with a break before and after when around is set.
func wrapB64(s string, n int, brk string, around bool) string {
	var b strings.Builder
	if around {
		b.WriteString(brk)
	}
	for i := 0; i < len(s); i += n {
		if n == 0 {
			b.WriteString(s)
			break
		}
		if i > 0 {
			b.WriteString(brk)
		}
		b.WriteString(s[i:min(i+n, len(s))])
	}
	if around {
		b.WriteString(brk)
	}
	return b.String()
}

func randB64(r *rand.Rand, n int) string {
	b := make([]byte, n)
	r.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randHex(r *rand.Rand, n int) string {
	const h = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = h[r.Intn(16)]
	}
	return string(b)
}

func randID(r *rand.Rand) string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	for i := range b {
		b[i] = a[r.Intn(len(a))]
	}
	return string(b)
}

var b64Users = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}

// vcardStanzas: vCard results carrying a 4-8 KB photo, wrapped at 76 with
// \r\n (a client that escaped its CRs, relayed by the server as literal
// CRs), at 76 and 64 with \n, and unwrapped; with a get before each.
func vcardStanzas(r *rand.Rand, n int) []string {
	var out []string
	styles := []struct {
		n      int
		brk    string
		around bool
	}{{76, "\r\n", false}, {76, "\n", true}, {64, "\n", false}, {0, "", false}, {76, "\r\n", true}, {72, "\n", false}}
	for i := 0; i < n; i++ {
		u, v := b64Users[r.Intn(len(b64Users))], b64Users[r.Intn(len(b64Users))]
		id := randID(r)
		out = append(out, fmt.Sprintf("<iq type='get' id='%s' from='%s@b.test/phone' to='%s@a.test'><vCard xmlns='vcard-temp'/></iq>", id, v, u))
		st := styles[i%len(styles)]
		typ := "image/jpeg"
		if i%3 == 1 {
			typ = "image/png"
		}
		photo := wrapB64(randB64(r, 4096+r.Intn(4096)), st.n, st.brk, st.around)
		out = append(out, fmt.Sprintf("<iq type='result' id='%s' from='%s@a.test' to='%s@b.test/phone'><vCard xmlns='vcard-temp'><FN>%s Example</FN><NICKNAME>%s</NICKNAME><EMAIL><INTERNET/><USERID>%s@a.test</USERID></EMAIL><PHOTO><TYPE>%s</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard></iq>",
			id, u, v, strings.ToUpper(u[:1])+u[1:], u, u, typ, photo))
	}
	return out
}

// avatarStanzas: XEP-0084 metadata notifications and data items (as a
// PEP event and as an items result), 2-8 KB PNGs, unwrapped.
func avatarStanzas(r *rand.Rand, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		u, v := b64Users[r.Intn(len(b64Users))], b64Users[r.Intn(len(b64Users))]
		size := 2048 + r.Intn(6144)
		data := randB64(r, size)
		hash := randHex(r, 40)
		out = append(out, fmt.Sprintf("<message type='headline' from='%s@a.test' to='%s@b.test' id='%s'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'><item id='%s'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='%s' width='96' height='96' type='image/png' bytes='%d'/></metadata></item></items></event></message>",
			u, v, randID(r), hash, hash, size))
		id := randID(r)
		out = append(out, fmt.Sprintf("<iq type='get' from='%s@b.test/laptop' to='%s@a.test' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'><item id='%s'/></items></pubsub></iq>", v, u, id, hash))
		if i%2 == 0 {
			out = append(out, fmt.Sprintf("<iq type='result' from='%s@a.test' to='%s@b.test/laptop' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'><item id='%s'><data xmlns='urn:xmpp:avatar:data'>%s</data></item></items></pubsub></iq>", u, v, id, hash, data))
		} else {
			out = append(out, fmt.Sprintf("<message type='headline' from='%s@a.test' to='%s@b.test' id='%s'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:data'><item id='%s'><data xmlns='urn:xmpp:avatar:data'>%s</data></item></items></event></message>", u, v, randID(r), hash, data))
		}
	}
	return out
}

// omemoStanzas: OMEMO (eu.siacs.conversations.axolotl) messages as
// Conversations sends them: a key per recipient device (PreKey messages
// longer), a 12-byte IV, the payload, the EME hint and fallback body.
func omemoStanzas(r *rand.Rand, n int) []string {
	var out []string
	sids := map[string]int{}
	res := map[string]string{} // one device each: Conversations' resource
	for _, u := range b64Users {
		sids[u] = 1 + r.Intn(1<<31-1)
		res[u] = randID(r)[:4]
	}
	for i := 0; i < n; i++ {
		u, v := b64Users[r.Intn(len(b64Users))], b64Users[r.Intn(len(b64Users))]
		var keys strings.Builder
		for d := 0; d < 1+r.Intn(3); d++ {
			if r.Intn(6) == 0 {
				fmt.Fprintf(&keys, "<key prekey='true' rid='%d'>%s</key>", sids[v]+d, randB64(r, 150+r.Intn(40)))
			} else {
				fmt.Fprintf(&keys, "<key rid='%d'>%s</key>", sids[v]+d, randB64(r, 60+r.Intn(20)))
			}
		}
		fmt.Fprintf(&keys, "<key rid='%d'>%s</key>", sids[u]+7, randB64(r, 60+r.Intn(20)))
		out = append(out, fmt.Sprintf("<message xml:lang='en' to='%s@b.test' from='%s@a.test/Conversations.%s' type='chat' id='%s'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='%d'>%s<iv>%s</iv></header><payload>%s</payload></encrypted><request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><origin-id xmlns='urn:xmpp:sid:0' id='%s'/><encryption xmlns='urn:xmpp:eme:0' name='OMEMO' namespace='eu.siacs.conversations.axolotl'/><body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that. Find more information on https://conversations.im/omemo</body><store xmlns='urn:xmpp:hints'/></message>",
			v, u, res[u], "", sids[u], keys.String(), randB64(r, 12), randB64(r, 10+r.Intn(300)), randID(r)))
	}
	// The message id and origin-id repeat (Conversations uses a UUID for both).
	for i, s := range out {
		id := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Intn(1<<16), r.Intn(1<<12), r.Intn(1<<12), r.Int63n(1<<48))
		s = strings.Replace(s, "id=''", "id='"+id+"'", 1)
		out[i] = s[:strings.LastIndex(s, "<origin-id")] + "<origin-id xmlns='urn:xmpp:sid:0' id='" + id + "'/>" + s[strings.Index(s, "<encryption "):]
	}
	return out
}

// b64Sets are the base64 bench files: name, stanzas.
func b64Sets() map[string][]string {
	return map[string][]string{
		"vcard":  vcardStanzas(rand.New(rand.NewSource(1)), 48),
		"avatar": avatarStanzas(rand.New(rand.NewSource(2)), 32),
		"omemo":  omemoStanzas(rand.New(rand.NewSource(3)), 400),
	}
}

// TestWriteB64Set writes testdata/b64/*.xml.gz for `isthmus bench` (with
// -write-b64).
func TestWriteB64Set(t *testing.T) {
	if !*writeB64 {
		t.Skip("-write-b64 not set")
	}
	for name, st := range b64Sets() {
		var buf bytes.Buffer
		buf.WriteString(streamHeader("a.test", "b.test"))
		for _, s := range st {
			buf.WriteString(s)
		}
		buf.WriteString("</stream:stream>")
		writeGz(t, filepath.Join("..", "testdata", "b64", name+".xml.gz"), buf.Bytes())
	}
}

// b64Seeds are stanzas whose text is base64 or nearly so: wrapped and
// unwrapped, every padding, and near misses that must cross as literals.
func b64Seeds() [][]byte {
	r := rand.New(rand.NewSource(5))
	long := randB64(r, 700)  // padding ==: 700 % 3 = 1
	long1 := randB64(r, 701) // padding =
	long0 := randB64(r, 702) // no padding
	short := randB64(r, 40)  // below internMax characters
	var out [][]byte
	add := func(text string) {
		out = append(out, []byte("<iq type='result' id='v1' from='a@a.test' to='b@b.test/r'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"+text+"</BINVAL></PHOTO></vCard></iq>"))
	}
	for _, text := range []string{
		long, long1, long0, short,
		wrapB64(long, 76, "\r\n", false), wrapB64(long1, 76, "\n", true), wrapB64(long0, 64, "\n", false),
		wrapB64(long, 76, "\r\n", true), wrapB64(long, 4, "\n", false), wrapB64(long0, 72, "\n", false) + "\n",
		"\n" + wrapB64(long, 76, "\n", false),
		// Near misses.
		strings.NewReplacer("+", "-", "/", "_").Replace(long), // base64url
		long + " ", long + "\n\n", " " + long, long[:len(long)-1], // trailing space, blank line, leading space, unpadded
		strings.TrimRight(long, "="), // padding dropped
		long[:len(long)-3] + "R==",   // padding bits not zero
		wrapB64(long, 76, "\n", false)[:100] + "\r\n" + wrapB64(long, 76, "\n", false)[101:], // mixed breaks
		wrapB64(long, 76, "\n", false)[:80] + wrapB64(long, 76, "\n", false)[81:],            // uneven lines
		wrapB64(long, 76, "\r\n", false) + "\r",                                              // stray CR
		wrapB64(long[:400]+"="+long[401:], 76, "\n", false),                                  // padding inside
		wrapB64(long, 76, "\n", false)[:500] + "\n" + wrapB64(long, 76, "\n", false)[500:],   // a short line inside
	} {
		add(text)
	}
	out = append(out, []byte("<message to='x@y' id='m'><body>Zm9v\r\nYmFy\r\n</body></message>"))
	return out
}

// fieldBytes returns the structural bytes of one stanza by accounting field.
func fieldBytes(st []byte) map[string]int {
	e := structEncoder{t: newTables(true), acct: map[string]int{}}
	e.stanza(st)
	return e.acct
}

// TestBase64CrossesAsBinary: base64 text, wrapped or not, crosses as its
// bytes (forms formB64 and formB64W) and decodes to the same characters,
// line breaks included; text that would not re-encode exactly crosses as
// a literal.
func TestBase64CrossesAsBinary(t *testing.T) {
	seeds := b64Seeds()
	got := roundTrip(t, seeds)
	for i, st := range seeds {
		if !bytes.Equal(got[i], st) {
			t.Errorf("seed %d changed:\n got %q\nwant %q", i, got[i], st)
		}
		text := st[bytes.IndexByte(st[1:], '>')+1:]
		if j := bytes.Index(st, []byte("<BINVAL>")); j >= 0 {
			text = st[j+8 : bytes.Index(st, []byte("</BINVAL>"))]
		}
		acct := fieldBytes(st)
		dec, _ := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(text)))
		switch {
		case i < 11: // the base64 texts
			if b64 := acct["text:b64"] + acct["text:b64long"]; b64 == 0 || b64 > len(dec)+8 || acct["text:literal"] != 0 {
				t.Errorf("seed %d: %d base64 bytes cost %v", i, len(dec), acct)
			}
		case i < len(seeds)-1: // the near misses
			if acct["text:b64"]+acct["text:b64long"] != 0 {
				t.Errorf("seed %d %q crossed as base64: %v", i, text[:min(len(text), 40)], acct)
			}
		}
	}
}

// TestB64SetCrosses: the bench's base64 set crosses byte for byte, none of
// it raw, every base64 text as binary (its bytes and a few of header).
func TestB64SetCrosses(t *testing.T) {
	re := regexp.MustCompile(`>([A-Za-z0-9+/=\r\n]{16,})<`)
	for name, set := range b64Sets() {
		var in [][]byte
		for _, s := range set {
			in = append(in, []byte(s))
		}
		got := roundTrip(t, in)
		for i, st := range in {
			if !bytes.Equal(got[i], st) {
				t.Fatalf("%s %d changed:\n got %q\nwant %q", name, i, got[i], st)
			}
			n, vals := 0, 0
			for _, m := range re.FindAllSubmatch(st, -1) {
				b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(m[1])))
				if err != nil {
					t.Fatal(err)
				}
				n += len(b)
				vals++
			}
			if acct := fieldBytes(st); acct["text:b64"]+acct["text:b64long"] < n || acct["text:b64"]+acct["text:b64long"] > n+6*vals {
				t.Errorf("%s %d: %d bytes of base64 in %d values cost %v", name, i, n, vals, acct)
			}
		}
	}
}

// longB64Block is a plain block of one <message> whose text is long
// base64 (formB64L) of n bytes with the given layout code.
func longB64Block(n int, layout uint64) []byte {
	b := []byte{modePlain, 1, 0}
	b = binary.AppendUvarint(b, itemReserved+1+uint64(vocabIndex["message"]))
	b = append(b, 0, itemText)
	b = binary.AppendUvarint(b, formB64L)
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, layout)
	b = append(b, bytes.Repeat([]byte{0xfb}, n)...)
	return append(b, itemEnd)
}

// The decoder checks long base64's layout and holds what it expands to
// (up to 3 bytes a character with CRLF after each) to its bound before
// writing it.
func TestLongB64Bounded(t *testing.T) {
	for _, c := range []struct {
		name   string
		n      int
		layout uint64
		ok     bool
	}{
		{"one line", 600, 0, true},
		{"76, CRLF, around", 600, 76<<3 | 7, true},
		{"no line length", 600, 5, false},
		{"too short", 8, 0, false},
		{"1, CRLF: 3x over the bound", 1200, 1<<3 | 4, false},
		{"over the bound", 3100, 0, false},
	} {
		dec, err := NewDecoder(WithDict(nil), WithMaxDecoded(4096))
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(longB64Block(c.n, c.layout))
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !errors.Is(err, ErrCorrupt):
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		case c.ok:
			w, _ := wrapOf(c.layout)
			want := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, c.n))
			if c.layout != 0 {
				want = string(w.append(nil, []byte(want)))
			}
			if string(got[0]) != "<message>"+want+"</message>" {
				t.Errorf("%s: decoded %q", c.name, got[0][:min(len(got[0]), 100)])
			}
		}
		dec.Close()
	}
}
