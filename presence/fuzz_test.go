package presence

import (
	"testing"
	"time"
)

// FuzzMirror feeds arbitrary stanzas from both sides: the mirror must not
// panic, and the canonical payload must be stable (parse → serialize →
// parse gives the same payload).
func FuzzMirror(f *testing.F) {
	f.Add("<presence from='carol@b.test/phone' to='ann@a.test'><show>away</show></presence>", true)
	f.Add("<presence from='carol@b.test/phone' to='a.test'><status>x</status><m xmlns='urn:xmpp:isthmus:mirror:0' add='ann bob' del='cid'/></presence>", false)
	f.Add("<iq from='b.test' to='a.test' type='set' id='s'><sync xmlns='urn:xmpp:isthmus:mirror:0' digest='00'/></iq>", false)
	f.Add("<presence from='ann@a.test' to='carol@b.test' type='probe'/>", true)
	f.Fuzz(func(t *testing.T, raw string, local bool) {
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		m, err := New(testConfig("a"), now)
		if err != nil {
			t.Fatal(err)
		}
		m.SetLink(now, true)
		n, err := parseElement([]byte(raw))
		if err != nil {
			return
		}
		st := Stanza{Name: n.local, From: n.attr("from"), To: n.attr("to"), Type: n.attr("type"), ID: n.attr("id"), Raw: []byte(raw)}
		if local {
			m.FromLocal(now, st)
		} else {
			m.FromPeer(now, st)
		}
		m.Tick(now.Add(time.Hour))
		p := payload(&n)
		n2, err := parseElement([]byte("<presence>" + p + "</presence>"))
		if err != nil {
			t.Fatalf("payload %q does not parse: %v", p, err)
		}
		if p2 := payload(&n2); p2 != p {
			t.Fatalf("payload not stable:\n%q\n%q", p, p2)
		}
	})
}
