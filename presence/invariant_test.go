package presence

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkTables verifies the bookkeeping of m's tables: every reference count
// of the interner equals the references the entries hold, bytes and n match
// the entries.
func checkTables(t *testing.T, m *Mirror, where string) {
	t.Helper()
	refs := map[strID]uint32{}
	for _, tb := range []*table{&m.out, &m.in} {
		var bytes int64
		n := 0
		for bare, c := range tb.c {
			for _, e := range c.ents {
				n++
				bytes += tb.size(bare, e)
				seen := map[strID]bool{}
				for i, id := range e.ids {
					refs[id]++
					if i >= int(e.npl) {
						if seen[id] {
							t.Fatalf("%s: %s/%s: recipient %q twice", where, bare, e.res, tb.s.str(id))
						}
						seen[id] = true
					}
				}
			}
		}
		if bytes != tb.bytes || n != tb.n {
			t.Fatalf("%s: table counts %d bytes %d entries, entries hold %d bytes %d entries", where, tb.bytes, tb.n, bytes, n)
		}
	}
	s := m.out.s
	for id := range s.strs {
		if s.refs[id] != refs[strID(id)] {
			t.Fatalf("%s: string %d %q: %d references counted, %d held", where, id, s.strs[id], s.refs[id], refs[strID(id)])
		}
		if s.refs[id] > 0 && s.ids[s.strs[id]] != strID(id) {
			t.Fatalf("%s: string %d %q not in the index", where, id, s.strs[id])
		}
	}
	if len(s.ids)+len(s.free) != len(s.strs) {
		t.Fatalf("%s: %d indexed + %d free != %d strings", where, len(s.ids), len(s.free), len(s.strs))
	}
}

// TestTablesRandom drives a pair with random presence, revocations, probes
// timers and restarts, some under a small MaxBytes, and checks the tables'
// bookkeeping after each step and that b's out table and a's in table agree
// whenever the fan-outs have crossed.
func TestTablesRandom(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		p := newPair(t)
		if seed%2 == 0 {
			for _, s := range []string{"a", "b"} {
				p.m[s].cfg.MaxBytes = 600
			}
		}
		contacts := []string{"carol@b.test/phone", "carol@b.test/pc", "dave@b.test/x", "erin@b.test/y"}
		users := []string{"ann", "bob", "cid"}
		payloads := []string{"<show>away</show>", "<show>dnd</show><status>busy</status>", "", "<status>a long status text that takes room</status><priority>1</priority>"}
		var ops []string
		for step := 0; step < 200; step++ {
			p.out = nil
			c, u := contacts[r.IntN(len(contacts))], users[r.IntN(len(users))]
			p.printf("-- step %d", step)
			switch k := r.IntN(10); {
			case k < 5:
				p.local("b", fmt.Sprintf("<presence from='%s' to='%s@a.test'>%s</presence>", c, u, payloads[r.IntN(len(payloads))]))
			case k == 5:
				p.local("b", fmt.Sprintf("<presence from='%s' to='%s@a.test' type='unavailable'/>", c, u))
			case k == 6:
				p.local("a", fmt.Sprintf("<presence from='%s@a.test' to='%s' type='unsubscribe'/>", u, c[:len(c)-len(c[indexByte(c, '/'):])]))
			case k == 7:
				p.local("a", fmt.Sprintf("<presence from='%s@a.test' to='%s' type='probe'/>", u, c[:indexByte(c, '/')]))
			case k == 8 && r.IntN(4) == 0:
				side := []string{"a", "b"}[r.IntN(2)]
				p.restart(side)
				if seed%2 == 0 {
					p.m[side].cfg.MaxBytes = 600
				}
			default:
				p.advance(p.m["b"].cfg.Window)
			}
			ops = append(ops, p.out...)
			for _, s := range []string{"a", "b"} {
				checkTables(t, p.m[s], fmt.Sprintf("seed %d step %d side %s", seed, step, s))
			}
			if len(p.m["b"].pend) == 0 {
				// Entries left without recipients can differ (no mirror
				// stanza has a domain to go to) until the digest exchange
				// repairs them; the others must agree.
				ra, rb := withRecipients(p.m["a"].State().In), withRecipients(p.m["b"].State().Out)
				if ra != rb {
					t.Fatalf("seed %d step %d: a's in table and b's out table differ:\n%s\n%s\n%s", seed, step, ra, rb, strings.Join(ops, "\n"))
				}
			}
		}
	}
}

func withRecipients(es []EntryState) string {
	var b strings.Builder
	for _, e := range es {
		if len(e.Rcpt) > 0 {
			fmt.Fprintf(&b, "%s %s %s\n", e.JID, strings.Join(e.Rcpt, ","), e.Payload)
		}
	}
	return b.String()
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}
