package s2s

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The stanza every case is wrapped in, and the good one that follows it.
const (
	stOpen   = "<message from='alice@a.test/r' to='bob@b.test' id='bad' type='chat'>"
	stClose  = "</message>"
	goodNext = "<message from='alice@a.test/r' to='bob@b.test' id='next' type='chat'><body>after</body></message>"
)

func inMsg(inner string) string { return stOpen + inner + stClose }

// strictCase is one input after an authenticated stream header.
type strictCase struct {
	name  string
	input string
	// What the reader must do with it: "" accept it; a stanza error
	// condition (bad-request, policy-violation) with detail: refuse the
	// stanza and read the next one; "stream:"+cond: end the stream.
	want   string
	detail string
	raw    string // for accepted input, Raw if not the input itself
}

func strictCases() []strictCase {
	const u = "urn:u"
	bad := func(name, input, detail string) strictCase {
		return strictCase{name: name, input: input, want: CondBadRequest, detail: detail}
	}
	ok := func(name, input string) strictCase { return strictCase{name: name, input: input} }
	cs := []strictCase{
		// Duplicate attributes, as written and after namespace expansion.
		bad("dup attr on stanza", "<message from='alice@a.test/r' to='bob@b.test' id='d' id='d' type='chat'><body>x</body></message>", "duplicate-attribute"),
		bad("dup attr different values", "<message from='alice@a.test/r' to='bob@b.test' id='bad' type='chat' type='error'/>", "duplicate-attribute"),
		bad("dup from", "<message from='alice@a.test/r' from='alice@a.test/r' to='bob@b.test' id='bad'/>", "duplicate-attribute"),
		bad("dup attr child", inMsg("<x a='1' a='2'/>"), "duplicate-attribute"),
		bad("dup attr quotes differ", inMsg(`<x a='1' a="1"/>`), "duplicate-attribute"),
		bad("dup expanded", inMsg("<x xmlns:a='"+u+"' xmlns:b='"+u+"' a:z='1' b:z='2'/>"), "duplicate-attribute"),
		bad("dup expanded across levels", inMsg("<y xmlns:a='"+u+"'><x xmlns:b='"+u+"' a:z='1' b:z='2'/></y>"), "duplicate-attribute"),
		bad("dup expanded on stanza", "<message xmlns:a='"+u+"' xmlns:b='"+u+"' a:z='1' b:z='2' from='alice@a.test/r' to='bob@b.test' id='bad'/>", "duplicate-attribute"),
		bad("dup xml:lang", inMsg("<x xml:lang='en' xml:lang='de'/>"), "duplicate-attribute"),
		bad("dup prefixed same prefix", inMsg("<x xmlns:a='"+u+"' a:z='1' a:z='2'/>"), "duplicate-attribute"),
		bad("dup namespace declaration", inMsg("<x xmlns:a='"+u+"' xmlns:a='"+u+"'/>"), "duplicate-attribute"),
		bad("dup default namespace", inMsg("<x xmlns='"+u+"' xmlns='"+u+"'/>"), "duplicate-attribute"),
		bad("dup deep", inMsg("<a><b><c><d e='1' f='2' e='3'/></c></b></a>"), "duplicate-attribute"),
		// Unbound prefixes.
		bad("unbound element prefix", inMsg("<foo:x/>"), "unbound-prefix"),
		bad("unbound attribute prefix", inMsg("<x foo:a='1'/>"), "unbound-prefix"),
		bad("unbound attribute prefix on stanza", "<message foo:bar='1' from='alice@a.test/r' to='bob@b.test' id='bad'/>", "unbound-prefix"),
		bad("prefix of a sibling", inMsg("<a xmlns:p='"+u+"'/><p:b/>"), "unbound-prefix"),
		bad("prefix out of scope", inMsg("<a xmlns:p='"+u+"'><p:b/></a><p:c/>"), "unbound-prefix"),
		bad("prefix declared by a child", inMsg("<p:a><b xmlns:p='"+u+"'/></p:a>"), "unbound-prefix"),
		bad("prefix of the dialback namespace redeclared away", inMsg("<y xmlns:db=''><db:x/></y>"), "namespace-declaration"),
		// Namespace declarations Namespaces in XML 1.0 forbids.
		bad("undeclare prefix", inMsg("<x xmlns:foo=''/>"), "namespace-declaration"),
		bad("undeclare prefix then use", inMsg("<x xmlns:foo='"+u+"'><y xmlns:foo=''><foo:z/></y></x>"), "namespace-declaration"),
		bad("undeclare prefix on stanza", "<message xmlns:foo='' from='alice@a.test/r' to='bob@b.test' id='bad'/>", "namespace-declaration"),
		bad("xml prefix rebound", inMsg("<x xmlns:xml='urn:other'/>"), "namespace-declaration"),
		bad("xml prefix undeclared", inMsg("<x xmlns:xml=''/>"), "namespace-declaration"),
		bad("xmlns prefix declared", inMsg("<x xmlns:xmlns='urn:x'/>"), "namespace-declaration"),
		bad("xmlns prefix declared to its own name", inMsg("<x xmlns:xmlns='http://www.w3.org/2000/xmlns/'/>"), "namespace-declaration"),
		bad("other prefix bound to xml namespace", inMsg("<x xmlns:p='http://www.w3.org/XML/1998/namespace'/>"), "namespace-declaration"),
		bad("other prefix bound to xmlns namespace", inMsg("<x xmlns:p='http://www.w3.org/2000/xmlns/'/>"), "namespace-declaration"),
		bad("default namespace xml", inMsg("<x xmlns='http://www.w3.org/XML/1998/namespace'/>"), "namespace-declaration"),
		bad("default namespace xmlns", inMsg("<x xmlns='http://www.w3.org/2000/xmlns/'/>"), "namespace-declaration"),
		bad("element prefix xmlns", inMsg("<xmlns:x/>"), "namespace-prefix"),
		// Names that are XML Names but not qualified names.
		bad("element name ends with colon", inMsg("<x:/>"), "name"),
		bad("element name starts with colon", inMsg("<:x/>"), "name"),
		bad("attribute name starts with colon", inMsg("<x :a='1'/>"), "name"),
		bad("attribute name ends with colon", inMsg("<x a:='1'/>"), "name"),
		bad("xmlns colon", inMsg("<x xmlns:='"+u+"'/>"), "name"),
		bad("local part starts with a digit", inMsg("<a:1b xmlns:a='"+u+"'/>"), "name"),
		bad("local part starts with a hyphen", inMsg("<x xmlns:a='"+u+"' a:-b='1'/>"), "name"),
		bad("local part starts with a combining mark", inMsg("<x xmlns:\u0300xml='"+u+"'/>"), "name"),
		bad("local part starts with a middle dot", inMsg("<a:\u00b7b xmlns:a='"+u+"'/>"), "name"),
		// Stricter than expat on purpose: not a URI reference, and
		// refused by parsers that use whitespace as namespace separator.
		bad("namespace name with a space", inMsg("<x xmlns:a='urn: u'/>"), "namespace-name"),
		bad("namespace name with a tab", inMsg("<x xmlns='urn:\tu'/>"), "namespace-name"),
		bad("namespace name with a tab reference", inMsg("<x xmlns='urn:&#9;u'/>"), "namespace-name"),
		// Attributes must be separated by whitespace.
		bad("attributes run together", inMsg("<x a='1'b='2'/>"), "attribute-syntax"),
		bad("attributes run together on stanza", "<message from='alice@a.test/r'to='bob@b.test' id='bad'/>", "attribute-syntax"),
		bad("attributes run together double quotes", inMsg(`<x a="1"b="2"/>`), "attribute-syntax"),
		// Raw characters that are not XML Chars.
		bad("raw SOH in text", inMsg("<body>a\x01b</body>"), "char"),
		bad("raw NUL in text", inMsg("<body>a\x00b</body>"), "char"),
		bad("raw VT in text", inMsg("<body>\x0b</body>"), "char"),
		bad("raw US in attribute", inMsg("<x a='\x1f'/>"), "char"),
		bad("raw ESC in id", "<message from='alice@a.test/r' to='bob@b.test' id='b\x1bad'/>", "char"),
		bad("raw U+FFFE", inMsg("<body>\uFFFE</body>"), "char"),
		bad("raw U+FFFF in attribute", inMsg("<x a='\uFFFF'/>"), "char"),
		bad("raw control in CDATA", inMsg("<body><![CDATA[a\x02b]]></body>"), "char"),
	}
	// Character references to code points that are not XML Chars, in
	// text, in attribute values and on the stanza itself.
	for _, ref := range []string{"&#xD800;", "&#xDFFF;", "&#xdbff;", "&#55296;", "&#0;", "&#x0;", "&#x00000;", "&#xFFFE;", "&#xFFFF;", "&#65535;",
		"&#x1;", "&#8;", "&#x0B;", "&#31;", "&#x110000;", "&#1114112;", "&#xFFFFFFFF;", "&#99999999999999999999;"} {
		cs = append(cs,
			bad("char ref "+ref+" in text", inMsg("<body>a"+ref+"b</body>"), "char"),
			bad("char ref "+ref+" in attribute", inMsg("<x a='"+ref+"'/>"), "char"),
			bad("char ref "+ref+" in id", "<message from='alice@a.test/r' to='bob@b.test' id='"+ref+"'/>", "char"))
	}
	cs = append(cs,
		// Well-formed, namespace-well-formed: accepted as is.
		ok("plain", inMsg("<body>hello</body>")),
		ok("xml:lang", "<message from='alice@a.test/r' to='bob@b.test' id='ok' xml:lang='en'><body xml:lang='de'>x</body></message>"),
		ok("xml prefix declared right", inMsg("<x xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>")),
		ok("default namespace undeclared", inMsg("<x xmlns='"+u+"'><y xmlns=''/></x>")),
		ok("prefixed child declared", inMsg("<p:x xmlns:p='"+u+"'><p:y p:a='1'/></p:x>")),
		ok("same local name in two namespaces", inMsg("<x xmlns:a='urn:1' xmlns:b='urn:2' a:z='1' b:z='2'/>")),
		ok("same local name with and without prefix", inMsg("<x xmlns:a='"+u+"' z='1' a:z='2'/>")),
		ok("prefix in default namespace and unprefixed", inMsg("<x xmlns='"+u+"' xmlns:a='"+u+"' z='1' a:z='2'/>")),
		ok("prefix redeclared in child", inMsg("<p:x xmlns:p='urn:1'><p:y xmlns:p='urn:2' p:a='1'/></p:x>")),
		ok("valid char refs", inMsg("<body>&#x9;&#10;&#xD;&#x20;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#x10FFFF;&#1114111;&#x0000041;&lt;&amp;&gt;&quot;&apos;</body>")),
		ok("valid char refs in attribute", inMsg("<x a='&#x9;&#xFFFD;&#x10FFFF;&amp;'/>")),
		ok("raw non-ASCII", inMsg("<body>\uFFFD é \U0001F600 \u0085 \x7f \t\r\n</body>")),
		ok("CDATA", inMsg("<body><![CDATA[<not> & markup ]] ]>]]></body>")),
		ok("CDATA ending in brackets", inMsg("<body><![CDATA[x]]]]]>]x]></body>")),
		ok("greater-than in value", inMsg("<x a='>' b=\"'\"/>")),
		ok("whitespace around equals", inMsg("<x a = '1'\n\tb\t=\"2\"/>")),
		ok("no attributes, end tag with space", inMsg("<x></x ><y\n/>")),
		ok("prefix starting with xml", inMsg("<xmlfoo:x xmlns:xmlfoo='"+u+"'/>")),
		ok("non-ASCII local part", inMsg("<a:\u00e9b xmlns:a='"+u+"' a:\u4e00='1'/>")),
		// A prefix bound only on the stream header is declared again on
		// the stanza, so that its bytes stand alone.
		strictCase{name: "dialback prefix from the header", input: inMsg("<db:x/>"),
			raw: "<message xmlns:db='jabber:server:dialback'" + stOpen[len("<message"):] + "<db:x/>" + stClose},
		strictCase{name: "stream prefix from the header on an attribute", input: inMsg("<x stream:a='1'/><db:y/>"),
			raw: "<message xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'" + stOpen[len("<message"):] + "<x stream:a='1'/><db:y/>" + stClose},
		ok("header prefix redeclared inside", inMsg("<db:x xmlns:db='"+u+"'/>")),
		// Stream-level: the stream cannot be read on.
		strictCase{name: "mismatched tags", input: inMsg("<body></x>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "two colons", input: inMsg("<a:b:c/>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "invalid UTF-8", input: inMsg("<body>\xc3\x28</body>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "surrogate in UTF-8", input: inMsg("<body>\xed\xa0\x80</body>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "less-than in value", input: inMsg("<x a='<'/>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "empty char ref", input: inMsg("<body>&#;</body>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "char ref without semicolon", input: inMsg("<body>&#65 </body>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "upper case X char ref", input: inMsg("<body>&#X41;</body>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "control character in a tag", input: inMsg("<x\x01/>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "unquoted attribute", input: inMsg("<x a=1/>"), want: "stream:" + SErrNotWellFormed},
		strictCase{name: "undefined entity", input: inMsg("<body>&foo;</body>"), want: "stream:" + SErrRestrictedXML},
		strictCase{name: "unbound prefix on dialback", input: "<db:result from='a.test' to='b.test' foo:x='1'>k</db:result>", want: "stream:" + SErrNotWellFormed},
		strictCase{name: "duplicate attribute on dialback", input: "<db:result from='a.test' from='a.test' to='b.test'>k</db:result>", want: "stream:" + SErrNotWellFormed},
		strictCase{name: "char ref between stanzas", input: "&#0;", want: "stream:" + SErrNotWellFormed},
		strictCase{name: "control character between stanzas", input: " \x01 ", want: "stream:" + SErrNotWellFormed},
		strictCase{name: "prefixed stanza", input: "<s:message xmlns:s='jabber:server' from='alice@a.test/r' to='bob@b.test'/>", want: "stream:" + SErrUnsupportedStanzaType},
	)
	return cs
}

// limitCases are over the limits of strictLimits.
var strictLimits = Limits{MaxStanzaSize: 4096, MaxDepth: 8, MaxAttrs: 8, MaxTextSize: 512}

func limitCases() []strictCase {
	pv := func(name, input, detail string) strictCase {
		return strictCase{name: name, input: input, want: CondPolicyViolation, detail: detail}
	}
	return []strictCase{
		pv("text", inMsg("<body>"+strings.Repeat("x", 600)+"</body>"), "text-size"),
		pv("text of references", inMsg("<body>"+strings.Repeat("&amp;", 200)+"</body>"), "text-size"),
		pv("text in CDATA", inMsg("<body><![CDATA["+strings.Repeat("x", 600)+"]]></body>"), "text-size"),
		pv("text of multibyte characters", inMsg("<body>"+strings.Repeat("é", 600)+"</body>"), "text-size"),
		pv("attribute value", "<message from='alice@a.test/r' to='bob@b.test' id='"+strings.Repeat("i", 600)+"'/>", "text-size"),
		pv("attribute value on child", inMsg("<x a='"+strings.Repeat("v", 600)+"'/>"), "text-size"),
		pv("attributes on stanza", "<message from='alice@a.test/r' to='bob@b.test' id='bad'"+manyAttrs(20)+"/>", "attributes"),
		pv("attributes on child", inMsg("<x"+manyAttrs(9)+"/>"), "attributes"),
		pv("attributes with duplicates past the limit", inMsg("<x"+manyAttrs(9)+" a1='x'/>"), "attributes"),
		pv("depth", inMsg(strings.Repeat("<a>", 9)+strings.Repeat("</a>", 9)), "depth"),
		pv("depth of empty elements", inMsg(strings.Repeat("<a>", 7)+"<b/>"+strings.Repeat("</a>", 7)), "depth"),
		pv("size", inMsg(strings.Repeat("<a>x</a>", 1000)), "stanza-size"),
		pv("size in attributes", inMsg(strings.Repeat("<a b='"+strings.Repeat("v", 400)+"'/>", 20)), "stanza-size"),
		pv("name", inMsg("<"+strings.Repeat("n", 600)+"/>"), "name-size"),
		pv("name with end tag", inMsg("<"+strings.Repeat("n", 600)+">x</"+strings.Repeat("n", 600)+">"), "name-size"),
		pv("name multibyte", inMsg("<"+strings.Repeat("é", 300)+">x</"+strings.Repeat("é", 300)+">"), "name-size"),
		{name: "mismatched past the limit", input: inMsg("<body>" + strings.Repeat("x", 600) + "</bodx>"), want: "stream:" + SErrNotWellFormed},
		{name: "mismatched past the depth", input: inMsg(strings.Repeat("<a>", 9) + strings.Repeat("</a>", 8) + "</b>"), want: "stream:" + SErrNotWellFormed},
		pv("CDATA of brackets", inMsg("<body><![CDATA["+strings.Repeat("]", 600)+"x]]]></body>"), "text-size"),
		pv("text of brackets", inMsg("<body>"+strings.Repeat("]", 300)+strings.Repeat("]x", 300)+"</body>"), "text-size"),
		pv("brackets then greater-than", inMsg("<body>"+strings.Repeat("x", 600)+"]x]>]]x></body>"), "text-size"),
		{name: "brackets and greater-than past the limit", input: inMsg("<body>" + strings.Repeat("x", 600) + "]]></body>"), want: "stream:" + SErrNotWellFormed},
		// One below each limit is fine.
		{name: "text at the limit", input: inMsg("<body>" + strings.Repeat("x", 512) + "</body>")},
		{name: "attributes at the limit", input: inMsg("<x" + manyAttrs(8) + "/>")},
		{name: "depth at the limit", input: inMsg(strings.Repeat("<a>", 7) + strings.Repeat("</a>", 7))},
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d='%d'", i, i)
	}
	return b.String()
}

// readCase reads the stream header, c.input and goodNext with lim.
func readCase(lim Limits, input string) (els []element, err error) {
	in := string(streamHeader("a.test", "b.test", "x")) + input + " " + goodNext + "</stream:stream>"
	rd := newXMLReader(strings.NewReader(in), lim)
	rd.inbound = true
	if _, err := rd.header(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for {
		el, err := rd.next()
		if err != nil {
			return els, err
		}
		els = append(els, el)
	}
}

// checkCase checks what the reader did with c.
func checkCase(t *testing.T, lim Limits, c strictCase) {
	t.Helper()
	els, err := readCase(lim, c.input)
	if cond, ok := strings.CutPrefix(c.want, "stream:"); ok {
		var se *StreamError
		if !errors.As(err, &se) || se.Cond != cond {
			t.Errorf("%s: got %v after %d elements, want stream error %s", c.name, err, len(els), cond)
		}
		return
	}
	if !errors.Is(err, errStreamEnd) {
		t.Errorf("%s: stream ended with %v, want the peer's end", c.name, err)
		return
	}
	if len(els) != 2 || els[1].Stanza == nil || els[1].Fault != nil || string(els[1].Stanza.Raw) != goodNext {
		t.Errorf("%s: %d elements, the next stanza not read right: %+v", c.name, len(els), els)
		return
	}
	el := els[0]
	if c.want == "" {
		want := c.raw
		if want == "" {
			want = c.input
		}
		if el.Fault != nil || el.Stanza == nil || string(el.Stanza.Raw) != want {
			t.Errorf("%s: got %+v (fault %+v), want accepted with Raw %q", c.name, el.Stanza, el.Fault, want)
		}
		return
	}
	if el.Fault == nil || el.Fault.Cond != c.want || el.Fault.Detail != c.detail {
		t.Errorf("%s: fault %+v, want %s/%s", c.name, el.Fault, c.want, c.detail)
		return
	}
	if st := el.Stanza; st == nil || st.Raw != nil || st.From != "alice@a.test/r" || st.To != "bob@b.test" || st.Name != "message" {
		t.Errorf("%s: refused stanza %+v, want its start tag's addresses and no Raw", c.name, el.Stanza)
	}
}

func TestStrictXML(t *testing.T) {
	for _, c := range strictCases() {
		checkCase(t, Limits{}, c)
		// ParseStanza holds a stanza alone to the same rules (a prefix
		// of the stream header is not bound there).
		_, err := ParseStanza([]byte(c.input))
		if accept := c.want == "" && c.raw == ""; (err == nil) != accept {
			t.Errorf("%s: ParseStanza: %v, want accepted %v", c.name, err, accept)
		}
	}
	for _, c := range limitCases() {
		checkCase(t, strictLimits, c)
	}
}

// TestStrictXMLExpat holds the reader's idea of namespace-well-formed XML
// against expat (Prosody's parser), through python3: every stanza the
// reader accepts parses on its own (Raw alone) and in its stream, and
// every input the reader refuses as XML (not for a limit or RFC 6120's
// restrictions) is refused by expat in its stream.
func TestStrictXMLExpat(t *testing.T) {
	var docs []string
	type check struct {
		name   string
		accept bool
	}
	var checks []check
	hdr := string(streamHeader("a.test", "b.test", "x"))
	for _, c := range append(strictCases(), limitCases()...) {
		lim := Limits{}
		if c.want == CondPolicyViolation || strings.HasPrefix(c.name, "text at") || strings.HasPrefix(c.name, "attributes at") || strings.HasPrefix(c.name, "depth at") {
			lim = strictLimits
		}
		els, err := readCase(lim, c.input)
		var se *StreamError
		switch {
		case errors.As(err, &se) && se.Cond == SErrNotWellFormed:
			docs = append(docs, hdr+c.input+"</stream:stream>")
			checks = append(checks, check{c.name + " (in its stream)", false})
		case len(els) > 0 && els[0].Fault != nil && els[0].Fault.Cond == CondBadRequest && els[0].Fault.Detail != "namespace-name":
			docs = append(docs, hdr+c.input+"</stream:stream>")
			checks = append(checks, check{c.name + " (in its stream)", false})
		case len(els) > 0 && els[0].Fault == nil && els[0].Stanza != nil:
			docs = append(docs, string(els[0].Stanza.Raw), hdr+c.input+"</stream:stream>")
			checks = append(checks, check{c.name + " (Raw alone)", true}, check{c.name + " (in its stream)", true})
		}
	}
	res := expat(t, docs)
	for i, c := range checks {
		if got := res[i] == ""; got != c.accept {
			t.Errorf("%s: reader accepts %v, expat %q: %q", c.name, c.accept, res[i], docs[i])
		}
	}
	t.Logf("%d documents checked against expat", len(docs))
}

const expatScript = `
import base64, json, sys
import xml.parsers.expat as E
out = []
for d in json.load(sys.stdin):
    p = E.ParserCreate(namespace_separator=' ')
    try:
        p.Parse(base64.b64decode(d), True)
        out.append("")
    except E.ExpatError as e:
        out.append(str(e) or "error")
json.dump(out, sys.stdout)
`

// expat parses each document with python3's expat in namespace mode and
// returns "" for each it accepts, the error otherwise. Without
// /usr/bin/python3 the test is skipped, but not on CI.
func expat(t *testing.T, docs []string) []string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed on CI: %v", py, err)
		}
		t.Skipf("no %s: %v", py, err)
	}
	enc := make([]string, len(docs))
	for i, d := range docs {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(d))
	}
	in, _ := json.Marshal(enc)
	cmd := exec.Command(py, "-c", expatScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 expat: %v: %s", err, stderr.String())
	}
	var res []string
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(docs) {
		t.Fatalf("python3 expat answered %q: %v", out, err)
	}
	return res
}

// genReader yields head, then n bytes of fill repeated, then tail, without
// holding the whole input.
type genReader struct {
	head, fill, tail string
	n                int
	i                int
}

func (g *genReader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) {
		switch {
		case g.i < len(g.head):
			c := copy(p[k:], g.head[g.i:])
			k, g.i = k+c, g.i+c
		case g.i < len(g.head)+g.n:
			off := g.i - len(g.head)
			c := min(len(p)-k, g.n-off)
			for j := range c {
				p[k+j] = g.fill[(off+j)%len(g.fill)]
			}
			k, g.i = k+c, g.i+c
		case g.i < len(g.head)+g.n+len(g.tail):
			off := g.i - len(g.head) - g.n
			c := copy(p[k:], g.tail[off:])
			k, g.i = k+c, g.i+c
		default:
			if k == 0 {
				return 0, io.EOF
			}
			return k, nil
		}
	}
	return k, nil
}

// TestRefusedStanzaMemory reads 17 MB stanzas of each shape with the
// gateway's default limits: each is refused, the next stanza is read, and reading it
// allocates a small fraction of its size (the decoder never holds it).
func TestRefusedStanzaMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("17 MB inputs: not in -short")
	}
	const n = 17 << 20
	hdr := string(streamHeader("a.test", "b.test", "x"))
	lim := Limits{MaxTextSize: 131072}.withDefaults() // the gateway's defaults
	for _, c := range []struct {
		name, head, fill, tail, detail string
	}{
		{"text", stOpen + "<body>", "x", "</body>" + stClose, "text-size"},
		{"multibyte text", stOpen + "<body>", "é€\U0001F600", "</body>" + stClose, "text-size"},
		{"text with references", stOpen + "<body>", "&amp;a", "</body>" + stClose, "text-size"},
		{"attribute value", "<message from='alice@a.test/r' to='bob@b.test' id='", "i", "'/>", "text-size"},
		{"attributes", "<message from='alice@a.test/r' to='bob@b.test'", " a='1'", "/>", "attributes"},
		{"elements", stOpen, "<a b='c'>x</a>", stClose, "stanza-size"},
		{"CDATA", stOpen + "<body><![CDATA[", "]x", "]]></body>" + stClose, "text-size"},
		{"name", stOpen + "<n", "n", "/>" + stClose, "name-size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := io.MultiReader(strings.NewReader(hdr),
				&genReader{head: c.head, fill: c.fill, tail: c.tail + goodNext, n: n - n%len(c.fill)})
			rd := newXMLReader(in, lim)
			rd.inbound = true
			if _, err := rd.header(); err != nil {
				t.Fatal(err)
			}
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			el, err := rd.next()
			runtime.ReadMemStats(&m1)
			f := el.Fault
			if err != nil || f == nil || f.Detail != c.detail {
				t.Fatalf("got %+v, %v; want refused for %s", f, err, c.detail)
			}
			// One token (text, a value, a tag, a name) of 17 MB: the
			// decoder got a bounded part of it, so little was
			// allocated at all. Many small tokens make garbage, but
			// nothing of the stanza is kept.
			alloc := m1.TotalAlloc - m0.TotalAlloc
			if c.name != "elements" && alloc > 4<<20 { // of 17 MB; the race detector adds some
				t.Errorf("reading a refused %d MB stanza allocated %d bytes", n>>20, alloc)
			}
			runtime.GC()
			runtime.ReadMemStats(&m1)
			if live := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); live > 1<<20 {
				t.Errorf("%d bytes live after reading a refused %d MB stanza", live, n>>20)
			}
			if cap(rd.rec.rec) > 2*lim.MaxStanzaSize {
				t.Errorf("recorder holds %d bytes", cap(rd.rec.rec))
			}
			t.Logf("%d MB refused (%s), %d KB allocated while reading it", n>>20, f.Detail, alloc>>10)
			el, err = rd.next()
			if err != nil || el.Stanza == nil || string(el.Stanza.Raw) != goodNext {
				t.Fatalf("next: %+v, %v", el.Stanza, err)
			}
		})
	}
}

// TestServerRefusesStanzaKeepsStream sends over-limit and not strict
// stanzas on an authenticated stream: each is bounced to its sender with a
// stanza error and counted, and the next stanza on the stream is delivered.
func TestServerRefusesStanzaKeepsStream(t *testing.T) {
	var mu sync.Mutex
	var replies []Stanza
	r := newRigWith(t, Limits{MaxTextSize: 131072}, func(c *ServerConfig) {
		c.Reject = func(st Stanza) { mu.Lock(); replies = append(replies, st); mu.Unlock() }
	})
	defer r.stop()
	cl := r.auth()
	cases := []struct{ name, input, cond, detail string }{
		{"140000-character body", inMsg("<body>" + strings.Repeat("x", 140000) + "</body>"), CondPolicyViolation, "text-size"},
		{"200 deep", inMsg(strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200)), CondPolicyViolation, "depth"},
		{"5000 attributes", "<message from='alice@a.test/r' to='bob@b.test' id='bad' type='chat'" + manyAttrs(5000) + "/>", CondPolicyViolation, "attributes"},
		{"17 MB", inMsg(strings.Repeat("<a>xxxxxxxxxxxxxxxxxxxxxxxxxxxx</a>", 17<<20/35)), CondPolicyViolation, "stanza-size"},
		{"duplicate attribute", "<message from='alice@a.test/r' to='bob@b.test' id='bad' id='bad' type='chat'/>", CondBadRequest, "duplicate-attribute"},
		{"unbound prefix", inMsg("<foo:x/>"), CondBadRequest, "unbound-prefix"},
		{"surrogate reference", inMsg("<body>&#xD800;</body>"), CondBadRequest, "char"},
		{"xml prefix rebound", inMsg("<x xmlns:xml='urn:x'/>"), CondBadRequest, "namespace-declaration"},
	}
	for i, c := range cases {
		next := fmt.Sprintf("<message from='alice@a.test/r' to='bob@b.test' id='next-%d'/>", i)
		go func() { _, _ = cl.c.Write([]byte(c.input + next)) }()
		r.sink.wait(t, "next-"+fmt.Sprint(i), func() bool { return len(r.sink.got) == i+1 })
		r.sink.mu.Lock()
		got := r.sink.got[i].ID
		ev := r.sink.events[len(r.sink.events)-1]
		r.sink.mu.Unlock()
		if got != fmt.Sprintf("next-%d", i) {
			t.Errorf("%s: delivered %q", c.name, got)
		}
		if !r.sink.hasDetail("in-refused", c.cond, c.detail) {
			t.Errorf("%s: no in-refused %s/%s event (last %+v)", c.name, c.cond, c.detail, ev)
		}
		mu.Lock()
		if len(replies) != i+1 {
			t.Fatalf("%s: %d replies", c.name, len(replies))
		}
		rep := replies[i]
		mu.Unlock()
		if rep.To != "alice@a.test/r" || rep.From != "bob@b.test" || rep.ID != "bad" || rep.Type != "error" ||
			!strings.Contains(string(rep.Raw), "<"+c.cond+" xmlns='"+NSStanzas+"'/>") || len(rep.Raw) > 400 {
			t.Errorf("%s: reply %+v %q", c.name, rep, rep.Raw)
		}
		if _, err := ParseStanza(rep.Raw); err != nil {
			t.Errorf("%s: reply does not parse: %v", c.name, err)
		}
	}
	// An error stanza that is refused is not answered.
	cl.write("<message from='alice@a.test/r' to='bob@b.test' id='e' type='error'><x a='1' a='1'/></message>" + goodNext)
	r.sink.wait(t, "next", func() bool { return len(r.sink.got) == len(cases)+1 })
	mu.Lock()
	defer mu.Unlock()
	if len(replies) != len(cases) {
		t.Errorf("error stanza answered: %+v", replies[len(replies)-1])
	}
}

// TestStrictXMLExpatMutations checks the reader against expat on inputs
// made from the cases by inserting, at random places, pieces that strict
// parsers care about (deterministic: a fixed seed).
func TestStrictXMLExpatMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of documents through python3: not in -short")
	}
	pieces := []string{" a='1'", " a='2'", " b:a='1'", " xmlns:b='urn:u'", " xmlns:c='urn:u'", " c:a='3'", " xmlns:b=''",
		" xmlns=''", " xmlns='urn:v'", " xml:lang='en'", " xmlns:xml='urn:x'", " xmlns:xml='http://www.w3.org/XML/1998/namespace'",
		" xmlns:xmlns='urn:x'", "<b:x/>", "<c:x/>", "<x/>", "<xml:x/>", "<xmlns:x/>", "&#xD800;", "&#0;", "&#x9;", "&#65;", "&#xFFFE;",
		"&amp;", "\x01", "\x00", "\uFFFE", "\uFFFD", "é", "\u0300", "\u00B7", "\u0387", "\u3005", ":", "'", "\"", "=", "<", ">", "/",
		"]]>", "]]", "<![CDATA[", "]]]>", "<y>", "</y>", " ", "\t", "a", "-", ".", "1", "db:", "stream:", "<db:x/>", " stream:a='1'"}
	seeds := []string{}
	for _, c := range strictCases() {
		if !strings.HasPrefix(c.want, "stream:") {
			seeds = append(seeds, c.input)
		}
	}
	rnd, rounds := uint64(0x9E3779B97F4A7C15), 3000
	// S2S_EXPAT_MUTATIONS=N,SEED runs N inputs from another seed.
	if v := os.Getenv("S2S_EXPAT_MUTATIONS"); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d", &rounds, &rnd); err != nil || rnd == 0 {
			t.Fatalf("S2S_EXPAT_MUTATIONS=%q: want N,SEED (SEED not 0)", v)
		}
	}
	next := func(n int) int {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int(rnd % uint64(n))
	}
	hdr := string(streamHeader("a.test", "b.test", "x"))
	var docs, names []string
	var accept []bool
	for range rounds {
		in := seeds[next(len(seeds))]
		for range 1 + next(3) {
			i := next(len(in) + 1)
			if next(4) == 0 && i < len(in) {
				in = in[:i] + in[i+1+next(min(3, len(in)-i)):]
			} else {
				in = in[:i] + pieces[next(len(pieces))] + in[i:]
			}
		}
		els, err := readCase(Limits{}, in)
		var se *StreamError
		switch {
		case errors.As(err, &se) && se.Text == "text between stanzas":
			// RFC 6120's rule, not XML's
		case errors.As(err, &se) && se.Cond == SErrNotWellFormed,
			len(els) > 0 && els[0].Fault != nil && els[0].Fault.Cond == CondBadRequest && els[0].Fault.Detail != "namespace-name":
			docs, names, accept = append(docs, hdr+in+"</stream:stream>"), append(names, "refused"), append(accept, false)
		case slices.ContainsFunc(els, func(el element) bool { return el.Fault != nil }):
			// refused for a limit or a rule beyond XML's
		case err == nil || errors.Is(err, errStreamEnd):
			for _, el := range els {
				if el.Stanza != nil && el.Fault == nil {
					docs, names, accept = append(docs, string(el.Stanza.Raw)), append(names, "accepted, Raw alone"), append(accept, true)
				}
			}
			docs, names, accept = append(docs, hdr+in+" "+goodNext+"</stream:stream>"), append(names, "accepted"), append(accept, true)
		}
	}
	res := expat(t, docs)
	bad := 0
	for i := range docs {
		if (res[i] == "") != accept[i] {
			if bad++; bad <= 20 {
				t.Errorf("reader: %s, expat: %q: %q", names[i], res[i], docs[i])
			}
		}
	}
	t.Logf("%d documents checked against expat, %d disagree", len(docs), bad)
}
