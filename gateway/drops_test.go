package gateway

import (
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link"
)

func TestReplyCond(t *testing.T) {
	st, err := s2s.ParseStanza([]byte("<message from='a@a.test/x' to='b@b.test' id='1'><body>x</body></message>"))
	if err != nil {
		t.Fatal(err)
	}
	for r := range numDropReasons {
		c := r.cond()
		if c == "" {
			continue
		}
		reply, ok := s2s.ErrorReply(st, c)
		if !ok {
			t.Fatalf("no reply for %s", c)
		}
		if got := replyCond(reply.Raw); got != c {
			t.Errorf("replyCond of a %s bounce = %q", c, got)
		}
	}
	if got := replyCond([]byte("<message type='error'/>")); got != s2s.CondUndefinedCondition {
		t.Errorf("replyCond without a condition = %q", got)
	}
}

// TestPoolReasons: each condition the S2S pool bounces with maps to a
// reason that bounces with the same condition.
func TestPoolReasons(t *testing.T) {
	for _, c := range []string{s2s.CondRemoteServerNotFound, s2s.CondRemoteServerTimeout, s2s.CondResourceConstraint,
		s2s.CondServiceUnavailable, s2s.CondJIDMalformed} {
		if r := poolReason(c); r.cond() != c {
			t.Errorf("pool condition %s -> reason %s, which bounces with %s", c, r, r.cond())
		}
	}
}

func TestEventCounts(t *testing.T) {
	c := newCounters()
	c.event(s2s.Event{Kind: s2s.EventStreamError, Reason: s2s.SErrPolicyViolation, Detail: "stanza-size"})
	c.event(s2s.Event{Kind: s2s.EventInRefused, Reason: "s2s: dial b.test: connection refused"})
	c.event(s2s.Event{Kind: s2s.EventLimit, Reason: "throttled", Detail: "stanza-rate"})
	c.event(s2s.Event{Kind: s2s.EventOutAuth, Reason: "tls"})
	got := c.snapshot("x", link.Stats{}).Events
	want := map[string]uint64{"stream-error:policy-violation": 1, "limit:stanza-size": 1, "in-refused:other": 1, "limit:stanza-rate": 1, "out-auth": 1}
	if len(got) != len(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("events[%q] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
