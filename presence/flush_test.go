package presence

import (
	"strings"
	"testing"
)

// TestFlushFrom: a stanza of another kind from a contact sends the contact's
// fan-out being collected at once (so that it does not overtake it), and
// leaves other contacts' fan-outs collecting.
func TestFlushFrom(t *testing.T) {
	p := newPair(t)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>")
	p.local("b", "<presence from='dave@b.test/pc' to='ann@a.test'><show>dnd</show></presence>")
	crossed := func(who string) bool {
		for _, l := range p.out {
			if strings.HasPrefix(l, "b>link <presence from='"+who) {
				return true
			}
		}
		return false
	}
	if crossed("carol") || crossed("dave") {
		t.Fatalf("fan-out crossed before its window: %q", p.out)
	}
	p.m["b"].FlushFrom(p.now, "Carol@b.test/laptop")
	p.drain("b")
	if !crossed("carol") {
		t.Fatalf("carol's fan-out not sent by FlushFrom: %q", p.out)
	}
	if crossed("dave") {
		t.Fatalf("dave's fan-out sent by carol's FlushFrom: %q", p.out)
	}
	p.advance(p.m["b"].cfg.Window)
	if !crossed("dave") {
		t.Fatalf("dave's fan-out not sent after its window: %q", p.out)
	}
}
