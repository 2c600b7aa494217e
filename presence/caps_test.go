package presence

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// sha1Ver is the ver a naive XEP-0115 implementation computes from a
// verification string s.
func sha1Ver(s string) string {
	h := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

const (
	featA = "http://jabber.org/protocol/caps"
	featB = "http://jabber.org/protocol/disco#info"
)

// TestVerifyCapsRefuses is defect 4 of issue 10: each result below hashes
// (as §5.1 is computed without the §5.4 checks) to the ver given, and
// is refused, not cached for every user.
func TestVerifyCapsRefuses(t *testing.T) {
	id := "<identity category='client' type='pc'/>"
	form := func(fields string) string { return "<x xmlns='jabber:x:data' type='result'>" + fields + "</x>" }
	ftype := func(v string) string {
		return "<field var='FORM_TYPE' type='hidden'><value>" + v + "</value></field>"
	}
	legit := id + "<feature var='" + featA + "'/><feature var='" + featB + "'/>"
	legitVer := sha1Ver("client/pc//<" + featA + "<" + featB + "<")
	if err := VerifyCapsXML([]byte("<query xmlns='"+nsDisco+"'>"+legit+"</query>"), "sha-1", legitVer); err != nil {
		t.Fatalf("legitimate result refused: %v", err)
	}
	cases := []struct {
		name, inner, ver string
	}{
		// One feature "A<B" gives the verification string of the two
		// features A and B: the ver of a different feature set.
		{"lt in feature", id + "<feature var='" + featA + "&lt;" + featB + "'/>", legitVer},
		{"lt in identity name", "<identity category='client' type='pc' name='a&lt;b'/>", sha1Ver("client/pc//a<b<")},
		{"lt in field value", id + form(ftype("urn:x")+"<field var='f'><value>1&lt;2</value></field>"), sha1Ver("client/pc//<urn:x<f<1<2<")},
		{"lt in FORM_TYPE", id + form(ftype("urn:x&lt;f")), sha1Ver("client/pc//<urn:x<f<")},
		{"duplicate identity", id + id + "<feature var='" + featA + "'/>", sha1Ver("client/pc//<client/pc//<" + featA + "<")},
		{"duplicate feature", id + "<feature var='" + featA + "'/><feature var='" + featA + "'/>", sha1Ver("client/pc//<" + featA + "<" + featA + "<")},
		{"two forms, one FORM_TYPE", id + form(ftype("urn:x")) + form(ftype("urn:x")), sha1Ver("client/pc//<urn:x<urn:x<")},
		{"two FORM_TYPE fields", id + form(ftype("urn:x")+ftype("urn:y")), sha1Ver("client/pc//<urn:y<")},
		{"FORM_TYPE with two values", id + form("<field var='FORM_TYPE' type='hidden'><value>urn:x</value><value>urn:y</value></field>"), sha1Ver("client/pc//<urn:x<")},
		{"FORM_TYPE not hidden", id + form("<field var='FORM_TYPE'><value>urn:x</value></field>"), sha1Ver("client/pc//<urn:x<")},
		{"form without FORM_TYPE", id + form("<field var='f'><value>1</value></field>"), sha1Ver("client/pc//<<f<1<")},
		{"form not a result", id + "<x xmlns='jabber:x:data' type='form'>" + ftype("urn:x") + "</x>", sha1Ver("client/pc//<urn:x<")},
		{"field twice", id + form(ftype("urn:x")+"<field var='f'><value>1</value></field><field var='f'><value>2</value></field>"), ""},
		{"unhashed element", legit + "<evil xmlns='urn:e'>x</evil>", legitVer},
		{"unhashed attribute", id + "<feature var='" + featA + "' href='http://evil/'/><feature var='" + featB + "'/>", legitVer},
		{"text in feature", id + "<feature var='" + featA + "'>click here</feature><feature var='" + featB + "'/>", legitVer},
		{"identity without type", "<identity category='client'/>", sha1Ver("client///<")},
	}
	for _, c := range cases {
		err := VerifyCapsXML([]byte("<query xmlns='"+nsDisco+"'>"+c.inner+"</query>"), "sha-1", c.ver)
		if !errors.Is(err, errCapsRefused) {
			t.Errorf("%s: got %v, want refused", c.name, err)
		}
	}
	if err := VerifyCapsXML([]byte("<query xmlns='"+nsDisco+"'>"+legit+"</query>"), "md5", legitVer); !errors.Is(err, errCapsAlgo) {
		t.Errorf("unknown algorithm: got %v", err)
	}
	if err := VerifyCapsXML([]byte("<query xmlns='"+nsDisco+"'>"+legit+"</query>"), "sha-256", legitVer); !errors.Is(err, errCapsHash) {
		t.Errorf("sha-1 ver checked as sha-256: got %v", err)
	}
}

// TestCapsPoisoning is defect 4 of issue 10 through a pair: carol advertises
// the ver of features {A, B}; her client answers ann's query with the single
// feature "A<B". Neither gateway caches it, and bob's later query crosses
// instead of being answered with it. A hash algorithm the gateway does not
// know is not cached either.
func TestCapsPoisoning(t *testing.T) {
	p := newPair(t)
	ver := sha1Ver("client/pc//<" + featA + "<" + featB + "<")
	node := "http://example.org/client#" + ver
	c := "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.org/client' ver='" + ver + "'/>"
	for _, to := range []string{"ann", "bob"} {
		p.local("b", "<presence from='carol@b.test/phone' to='"+to+"@a.test'>"+c+"</presence>")
	}
	p.advance(p.m["b"].cfg.Window)
	query := func(who, id string) (crossed bool) {
		p.out = nil
		p.local("a", "<iq from='"+who+"@a.test/r' to='carol@b.test/phone' type='get' id='"+id+"'><query xmlns='"+nsDisco+"' node='"+node+"'/></iq>")
		for _, l := range p.out {
			crossed = crossed || strings.HasPrefix(l, "a>link <iq from='"+who+"@a.test/r'")
		}
		return crossed
	}
	if !query("ann", "q1") {
		t.Fatal("first query answered locally")
	}
	p.local("b", "<iq from='carol@b.test/phone' to='ann@a.test/r' type='result' id='q1'><query xmlns='"+nsDisco+"' node='"+node+"'>"+
		"<identity category='client' type='pc'/><feature var='"+featA+"&lt;"+featB+"'/></query></iq>")
	for _, s := range []string{"a", "b"} {
		if c := p.m[s].Counters(); c.CapsRefused != 1 || c.CapsCached != 0 {
			t.Errorf("%s: refused %d cached %d, want 1 and 0", s, c.CapsRefused, c.CapsCached)
		}
	}
	if !query("bob", "q2") {
		t.Fatal("bob's query answered from a poisoned cache")
	}
	// The genuine answer is cached and serves ann's next query.
	p.local("b", "<iq from='carol@b.test/phone' to='bob@a.test/r' type='result' id='q2'><query xmlns='"+nsDisco+"' node='"+node+"'>"+
		"<identity category='client' type='pc'/><feature var='"+featA+"'/><feature var='"+featB+"'/></query></iq>")
	if query("ann", "q3") {
		t.Error("genuine result not cached")
	}

	// An algorithm the gateway does not know: not cached.
	c = strings.Replace(c, "sha-1", "md5", 1)
	node2 := "http://example.org/other#" + ver
	c = strings.Replace(c, "http://example.org/client", "http://example.org/other", 1)
	p.local("b", "<presence from='dave@b.test/x' to='ann@a.test'>"+c+"</presence>")
	p.advance(p.m["b"].cfg.Window)
	p.local("a", "<iq from='ann@a.test/r' to='dave@b.test/x' type='get' id='q4'><query xmlns='"+nsDisco+"' node='"+node2+"'/></iq>")
	p.local("b", "<iq from='dave@b.test/x' to='ann@a.test/r' type='result' id='q4'><query xmlns='"+nsDisco+"' node='"+node2+"'>"+
		"<identity category='client' type='pc'/><feature var='"+featA+"'/><feature var='"+featB+"'/></query></iq>")
	if c := p.m["a"].Counters(); c.CapsUnverifiable != 1 || c.CapsCached != 1 {
		t.Errorf("md5: unverifiable %d cached %d, want 1 and 1", c.CapsUnverifiable, c.CapsCached)
	}
}
