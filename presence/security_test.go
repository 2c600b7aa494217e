package presence

import (
	"strings"
	"testing"
)

// TestSecurity is item 5 of issue 7: a user without a subscription probes a
// contact and gets nothing from the mirror; after an unsubscribe nothing more
// is replayed to that user.
func TestSecurity(t *testing.T) {
	p := newPair(t)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>")
	p.advance(p.m["b"].cfg.Window)

	answers := func(who string) (local, crossed bool) {
		p.out = nil
		p.local("a", "<presence from='"+who+"@a.test' to='carol@b.test' type='probe'/>")
		for _, l := range p.out {
			if strings.HasPrefix(l, "a>local <presence from='carol@b.test/phone' to='"+who+"@a.test'") {
				local = true
			}
			if strings.HasPrefix(l, "a>link <presence from='"+who+"@a.test' to='carol@b.test' type='probe'") {
				crossed = true
			}
		}
		return local, crossed
	}
	if local, crossed := answers("eve"); local || !crossed {
		t.Errorf("probe without subscription: answered from mirror %v, crossed %v", local, crossed)
	}
	if local, _ := answers("ann"); !local {
		t.Fatal("subscribed probe not answered from the mirror")
	}
	p.local("a", "<presence from='ann@a.test' to='carol@b.test' type='unsubscribe'/>")
	if local, crossed := answers("ann"); local || !crossed {
		t.Errorf("probe after unsubscribe: answered from mirror %v, crossed %v", local, crossed)
	}
	// A later change from carol to others must not reach ann.
	p.out = nil
	p.local("b", "<presence from='carol@b.test/phone' to='bob@a.test'><show>chat</show></presence>")
	p.advance(p.m["b"].cfg.Window)
	for _, l := range p.out {
		if strings.Contains(l, "to='ann@a.test'") || strings.Contains(l, "add='ann") {
			t.Errorf("replayed to ann after unsubscribe: %s", l)
		}
	}
	if c := p.m["a"].Counters(); c.Revoked == 0 {
		t.Errorf("nothing revoked on a: %+v", c)
	}
}
