package hostile

import (
	"fmt"
	"strings"
	"time"
)

// xmlCases are the stanza-level faults of issue 10 (defects 2 and 3): XML
// that encoding/xml accepts but strict parsers refuse, and stanzas over a
// limit. Each costs its stanza only: the gateway bounces it to its sender
// with a stanza error, counts it, and reads on; the stanza sent after it on
// the same stream is delivered. Run by TestHostile with the other cases.
func xmlCases() []hcase {
	const u = "urn:u"
	in := func(id, inner string) string {
		return "<message from='alice@a.test/x' to='bob@b.test' id='" + id + "' type='chat'><body>x</body>" + inner + "</message>"
	}
	br := func(name, id, input, detail string) hcase { return bounceCase(name, id, input, "bad-request", detail) }
	pv := func(name, id, input, detail string) hcase {
		return bounceCase(name, id, input, "policy-violation", detail)
	}
	return []hcase{
		// Duplicate attributes (issue 10's example and its class).
		br("duplicate-attribute", "h-dup", "<message from='alice@a.test/x' to='bob@b.test' id='h-dup' id='h-dup' type='chat'><body>x</body></message>", "duplicate-attribute"),
		br("duplicate-attribute-child", "h-dup2", in("h-dup2", "<x a='1' a='2'/>"), "duplicate-attribute"),
		br("duplicate-attribute-expanded", "h-dup3", in("h-dup3", "<x xmlns:a='"+u+"' xmlns:b='"+u+"' a:z='1' b:z='2'/>"), "duplicate-attribute"),
		br("duplicate-xml-lang", "h-dup4", in("h-dup4", "<x xml:lang='en' xml:lang='de'/>"), "duplicate-attribute"),
		// Unbound prefixes.
		br("unbound-element-prefix", "h-unb", in("h-unb", "<foo:x/>"), "unbound-prefix"),
		br("unbound-attribute-prefix", "h-unb2", in("h-unb2", "<x foo:a='1'/>"), "unbound-prefix"),
		br("prefix-out-of-scope", "h-unb3", in("h-unb3", "<a xmlns:p='"+u+"'/><p:b/>"), "unbound-prefix"),
		// Declarations Namespaces in XML 1.0 forbids.
		br("undeclared-prefix", "h-undecl", in("h-undecl", "<x xmlns:foo=''/>"), "namespace-declaration"),
		br("xml-prefix-rebound", "h-xml", in("h-xml", "<x xmlns:xml='urn:other'/>"), "namespace-declaration"),
		br("xmlns-prefix-declared", "h-xmlns", in("h-xmlns", "<x xmlns:xmlns='urn:x'/>"), "namespace-declaration"),
		br("prefix-bound-to-xml-namespace", "h-xmlns2", in("h-xmlns2", "<x xmlns:p='http://www.w3.org/XML/1998/namespace'/>"), "namespace-declaration"),
		// Characters that are not XML Chars.
		br("char-ref-surrogate", "h-d800", in("h-d800", "<x>&#xD800;</x>"), "char"),
		br("char-ref-nul", "h-nul", in("h-nul", "<x a='&#0;'/>"), "char"),
		br("char-ref-fffe", "h-fffe", in("h-fffe", "<x>&#xFFFE;</x>"), "char"),
		br("char-ref-beyond-unicode", "h-110000", in("h-110000", "<x>&#x110000;</x>"), "char"),
		br("raw-control-character", "h-ctl", in("h-ctl", "<x>a\x01b</x>"), "char"),
		// Names and syntax encoding/xml lets through.
		br("attributes-not-separated", "h-ws", in("h-ws", "<x a='1'b='2'/>"), "attribute-syntax"),
		br("not-a-qualified-name", "h-qn", in("h-qn", "<x:/>"), "name"),
		// Over a limit: skipped with bounded memory.
		pv("text-140000", "h-text", in("h-text", "<x>"+strings.Repeat("t", 140000)+"</x>"), "text-size"),
		pv("attribute-value-100KB", "h-attrval", "<message from='alice@a.test/x' to='bob@b.test' id='h-attrval' a='"+strings.Repeat("i", 100000)+"'/>", "text-size"),
		pv("attributes-5000", "h-attrs", "<message from='alice@a.test/x' to='bob@b.test' id='h-attrs'><x"+manyAttrs(5000)+"/></message>", "attributes"),
		pv("nesting-200", "h-deep", in("h-deep", strings.Repeat("<a>", 200)+strings.Repeat("</a>", 200)), "depth"),
		pv("stanza-17MB", "h-17mb", in("h-17mb", strings.Repeat("<x>AAAAAAAAAAAAAAAAAAAAAAAAAAAA</x>", 17<<20/35)), "stanza-size"),
		pv("name-10KB", "h-name", in("h-name", "<"+strings.Repeat("n", 10000)+"/>"), "name-size"),
		// A prefix declared only on the stream header: the stanza is
		// forwarded with the declaration on it, so it stands alone.
		{name: "stream-header-prefix", want: "delivered, declaration added", run: func(r *rig) (string, error) {
			return r.delivered(in("h-hdrprefix", "<db:x/>"), "h-hdrprefix")
		}},
	}
}

func bounceCase(name, id, input, cond, detail string) hcase {
	return hcase{name: name, want: "<" + cond + "/> bounce, stream kept (" + detail + ")",
		counts: []string{"in-refused:" + cond, "limit:" + detail},
		run:    func(r *rig) (string, error) { return r.bounce(input, id, cond) }}
}

// bounce sends input (a stanza with id) and a good stanza after it on one
// authenticated stream: input must come back to its sender as an error
// with cond and not be delivered, the good stanza must be delivered, and
// the stream must still carry a third stanza after that.
func (r *rig) bounce(input, id, cond string) (string, error) {
	v, err := r.auth()
	if err != nil {
		return "", err
	}
	defer v.c.Close()
	after, again := id+"-after", id+"-again"
	go v.write(input + msg("alice@a.test/x", "bob@b.test", after, "")) // a big input blocks until read
	deadline := time.Now().Add(60 * time.Second)                       // 17 MB under the race detector: ~15s
	for {
		errs, n := r.a.errorsFor(id), r.b.otherCount(after)
		if len(errs) > 0 && n == 1 {
			if errs[0] != cond {
				return "bounce " + errs[0], fmt.Errorf("bounce condition %v, want %s", errs, cond)
			}
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("bounce %v, next stanza delivered %d times (stream: %q)", errs, n, tail(v.buf.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.b.otherCount(id); n != 0 {
		return "", fmt.Errorf("refused stanza delivered %d times", n)
	}
	if _, err := r.delivered(msg("alice@a.test/x", "bob@b.test", again, ""), again, v); err != nil {
		return "", fmt.Errorf("stream after the bounce: %w", err)
	}
	return "<" + cond + "/> bounce to the sender, next stanzas on the stream delivered", nil
}

// delivered sends input (on v, or on a new authenticated stream) and waits
// for the stanza id to arrive once at b.test.
func (r *rig) delivered(input, id string, on ...*conv) (string, error) {
	var v *conv
	if len(on) > 0 {
		v = on[0]
	} else {
		var err error
		if v, err = r.auth(); err != nil {
			return "", err
		}
		defer v.c.Close()
	}
	v.write(input)
	deadline := time.Now().Add(5 * time.Second)
	for r.b.otherCount(id) != 1 {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s delivered %d times (stream: %q)", id, r.b.otherCount(id), tail(v.buf.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "delivered once", nil
}
