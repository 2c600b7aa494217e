package presence

import (
	"strings"
	"testing"
)

// TestMaxBytesOut: a fan-out whose entry would take b's out table beyond
// MaxBytes crosses as plain presence; its recipients leave the entry on both
// gateways, so the digests still match and nothing is repaired.
func TestMaxBytesOut(t *testing.T) {
	p := newPair(t)
	for _, s := range []string{"a", "b"} {
		p.m[s].cfg.MaxBytes = 250
	}
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>")
	p.local("b", "<presence from='carol@b.test/phone' to='bob@a.test'><show>away</show></presence>")
	p.advance(p.m["b"].cfg.Window)
	if o, _ := p.m["b"].Entries(); o != 1 || p.m["b"].out.bytes != 182 {
		t.Fatalf("b: %d entries, %d bytes, want 1 and 182", o, p.m["b"].out.bytes)
	}

	// A longer payload for ann no longer fits: it crosses plain.
	long := "<show>away</show><status>" + strings.Repeat("x", 80) + "</status>"
	p.out = nil
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'>"+long+"</presence>")
	p.advance(p.m["b"].cfg.Window)
	want := []string{
		"b>link <presence from='carol@b.test/phone' to='ann@a.test'>" + long + "</presence>",
		"a>local <presence from='carol@b.test/phone' to='ann@a.test'>" + long + "</presence>",
	}
	if strings.Join(p.out, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(p.out, "\n"), strings.Join(want, "\n"))
	}
	// A new contact does not fit either.
	p.local("b", "<presence from='dave@b.test/pc' to='ann@a.test'><show>away</show></presence>")
	p.advance(p.m["b"].cfg.Window)

	for s, t2 := range map[string]*table{"a": &p.m["a"].in, "b": &p.m["b"].out} {
		e := t2.get("carol@b.test", "phone")
		if e == nil || strings.Join(t2.rcpts(e), ",") != "bob@a.test" || t2.payload(e) != "<show>away</show>" {
			t.Errorf("%s: carol's entry is not away for bob only", s)
		}
		if t2.get("dave@b.test", "pc") != nil {
			t.Errorf("%s: dave has an entry", s)
		}
		if t2.bytes > 250 {
			t.Errorf("%s: %d bytes", s, t2.bytes)
		}
	}
	if c := p.m["b"].Counters(); c.FullBytes != 2 {
		t.Errorf("b: FullBytes %d, want 2", c.FullBytes)
	}
	if c := p.m["a"].Counters(); c.Unmirrored != 1 {
		t.Errorf("a: Unmirrored %d, want 1", c.Unmirrored)
	}
	// ann's probe is not answered from the mirror; bob's is.
	p.out = nil
	p.local("a", "<presence from='ann@a.test' to='carol@b.test' type='probe'/>")
	p.local("a", "<presence from='bob@a.test' to='carol@b.test' type='probe'/>")
	if !strings.HasPrefix(p.out[0], "a: pass") || !strings.HasPrefix(p.out[len(p.out)-1], "a>local <presence from='carol@b.test/phone' to='bob@a.test'") {
		t.Errorf("probes: %q", p.out)
	}
	// The tables agree: the heartbeat finds the same digest.
	p.advance(p.m["b"].cfg.Reprobe)
	if c := p.m["b"].Counters(); c.SyncRepaired != 0 || p.m["a"].Counters().SyncMatched == 0 {
		t.Errorf("tables differ after the bound: b %+v", c)
	}
}

// TestMaxBytesIn: a mirror stanza whose entry would take a's in table beyond
// its (smaller) MaxBytes is delivered and not kept.
func TestMaxBytesIn(t *testing.T) {
	p := newPair(t)
	p.m["a"].cfg.MaxBytes = 150
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>")
	p.local("b", "<presence from='carol@b.test/phone' to='bob@a.test'><show>away</show></presence>")
	p.out = nil
	p.advance(p.m["b"].cfg.Window)
	if n := strings.Count(strings.Join(p.out, "\n"), "a>local <presence from='carol@b.test/phone'"); n != 2 {
		t.Errorf("%d deliveries, want 2: %q", n, p.out)
	}
	if _, in := p.m["a"].Entries(); in != 0 || p.m["a"].in.bytes != 0 {
		t.Errorf("a: %d entries, %d bytes, want none", in, p.m["a"].in.bytes)
	}
	if c := p.m["a"].Counters(); c.FullBytes != 1 {
		t.Errorf("a: FullBytes %d, want 1", c.FullBytes)
	}
}

// TestInternerReleases: strings no entry refers to any more are released,
// and the byte count returns to zero when the tables empty.
func TestInternerReleases(t *testing.T) {
	p := newPair(t)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><status>one</status></presence>")
	p.advance(p.m["b"].cfg.Window)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><status>two</status></presence>")
	p.advance(p.m["b"].cfg.Window)
	for _, s := range []string{"a", "b"} {
		if n := len(p.m[s].out.s.ids); n != 2 { // the status and ann
			t.Errorf("%s: %d strings held, want 2", s, n)
		}
	}
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test' type='unavailable'/>")
	p.advance(p.m["b"].cfg.Window)
	for _, s := range []string{"a", "b"} {
		m := p.m[s]
		if len(m.out.s.ids) != 0 || m.out.bytes != 0 || m.in.bytes != 0 || m.out.n+m.in.n != 0 {
			t.Errorf("%s: %d strings, %d+%d bytes, %d+%d entries left", s, len(m.out.s.ids), m.out.bytes, m.in.bytes, m.out.n, m.in.n)
		}
	}
}
