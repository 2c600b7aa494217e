package sim

import (
	"testing"
	"time"
)

func FuzzHandle(f *testing.F) {
	res := runPair(f, DefaultScenario(), 20*time.Second, 0)
	for i, s := range res.transcript {
		if i%7 == 0 {
			f.Add([]byte(s[len("a.test "):]))
		}
	}
	for _, s := range []string{
		``, `<`, `<iq/>`, `<iq type='get' from='a.test' to='b.test'/>`,
		`<presence from='@a.test' to='/b.test'/>`,
		`<message from='x@a.test' to='alice@b.test' type='chat' id='1'><body>&bogus;</body></message>`,
		`<iq type='get' id='1' from='a.test' to='b.test'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>`,
		`<presence xmlns='jabber:server' from='alice@a.test/r' to='bob@b.test'><c xmlns='http://jabber.org/protocol/caps' node='n' ver='v'/><x xmlns='vcard-temp:x:update'><photo>ab</photo></x></presence>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, b := NewPair(DefaultScenario())
		now := t0
		b.Step(now)
		now = now.Add(20 * time.Second)
		b.Step(now)
		for _, out := range b.Handle(now, data) {
			n, err := parseStanza(out)
			if err != nil {
				t.Fatalf("reply does not parse: %v: %s", err, out)
			}
			from, ok := parseJID(n.attr("from"))
			if !ok || from.domain != "b.test" {
				t.Fatalf("reply not from b.test: %s", out)
			}
		}
		b.Step(now.Add(time.Minute)) // scheduled follow-ups must not break
	})
}
