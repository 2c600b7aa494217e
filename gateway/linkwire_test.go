package gateway

import (
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
)

// TestLinkItemPair: every stanza between the same two bare JIDs gets the
// same pair key, whatever its class, so the link keeps their order.
func TestLinkItemPair(t *testing.T) {
	cases := []struct {
		st              s2s.Stanza
		class           link.Class
		pair, coalesces string
		group           string
	}{
		{s2s.Stanza{Name: "presence", From: "bob@a.test", To: "alice@b.test", Type: "unavailable"},
			link.ClassPresence, "bob@a.test|alice@b.test", "bob@a.test|alice@b.test", "bob@a.test|b.test"},
		{s2s.Stanza{Name: "presence", From: "Bob@a.test/phone", To: "alice@b.test"},
			link.ClassPresence, "bob@a.test|alice@b.test", "Bob@a.test/phone|alice@b.test", "bob@a.test|b.test"},
		{s2s.Stanza{Name: "presence", From: "bob@a.test", To: "alice@b.test", Type: "subscribed"},
			link.ClassMessage, "bob@a.test|alice@b.test", "", "bob@a.test|b.test"},
		{s2s.Stanza{Name: "message", From: "bob@a.test/x/y", To: "Alice@B.test/r"},
			link.ClassMessage, "bob@a.test|alice@b.test", "", "bob@a.test|b.test"},
		{s2s.Stanza{Name: "iq", From: "a.test", To: "b.test"}, link.ClassIQ, "a.test|b.test", "", "a.test|b.test"},
	}
	for _, c := range cases {
		it := linkItem(c.st)
		if it.Class != c.class || it.Pair != c.pair || it.Coalesce != c.coalesces || it.Group != c.group {
			t.Errorf("%+v: class %v pair %q coalesce %q group %q; want %v %q %q %q", c.st, it.Class, it.Pair, it.Coalesce, it.Group, c.class, c.pair, c.coalesces, c.group)
		}
	}
}
