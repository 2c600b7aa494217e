package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// TestMessageDoesNotOvertakeSendersPresence: a contact's broadcast presence
// (collected by the mirror into a fan-out stanza, low priority) followed at
// once by its message (high priority) to a recipient: the recipient's server
// gets the presence first (RFC 6120 §10.1 orders stanzas per pair).
func TestMessageDoesNotOvertakeSendersPresence(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	// Warm the S2S streams and the link first.
	p.a.pool.Send(msg("carol@a.test/r", "bob@b.test", 0))
	waitFor(t, "first message", 10*time.Second, func() bool { return len(p.b.received()) == 1 })

	for i := 1; i <= 5; i++ {
		pres, err := s2s.ParseStanza([]byte("<presence from='carol@a.test/r' to='bob@b.test' id='p" + string(rune('0'+i)) + "'><show>away</show><status>round " + string(rune('0'+i)) + "</status></presence>"))
		if err != nil {
			t.Fatal(err)
		}
		p.a.pool.Send(pres)
		p.a.pool.Send(msg("carol@a.test/r", "bob@b.test", i))
		want := 1 + 2*i
		waitFor(t, "presence and message", 10*time.Second, func() bool { return len(p.b.received()) >= want })
		got := p.b.received()
		if got[want-2].Name != "presence" || got[want-1].Name != "message" {
			t.Fatalf("round %d: b.test got %s then %s, want presence then message", i, got[want-2].Name, got[want-1].Name)
		}
	}
}
