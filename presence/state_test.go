package presence

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// statePair is a pair with a few entries on both tables of a, and a cached
// caps result.
func statePair(t *testing.T) *pair {
	p := newPair(t)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test' id='i1'><show>away</show><status>at lunch</status></presence>")
	p.local("b", "<presence from='carol@b.test/phone' to='bob@a.test' id='i1'><show>away</show><status>at lunch</status></presence>")
	p.local("b", "<presence from='dave@b.test/pc' to='ann@a.test'><priority>5</priority></presence>")
	p.local("a", "<presence from='ann@a.test/x' to='carol@b.test'><show>chat</show></presence>")
	p.advance(p.m["b"].cfg.Window)
	return p
}

// comparable drops what State does not promise to keep (the kids cache).
func comparable(s State) State {
	for _, l := range [][]EntryState{s.Out, s.In} {
		for i := range l {
			l[i].kids = nil
		}
	}
	return s
}

// TestStateRoundTrip: version 2 gives back the state exactly, and so does a
// version 1 (JSON) file as earlier versions wrote it.
func TestStateRoundTrip(t *testing.T) {
	p := statePair(t)
	s := p.m["a"].State()
	if len(s.In) != 2 || len(s.Out) != 1 {
		t.Fatalf("state: %d in, %d out", len(s.In), len(s.Out))
	}
	v2, err := MarshalState(s)
	if err != nil {
		t.Fatal(err)
	}
	s1 := s
	s1.Version = 1
	v1, err := json.MarshalIndent(s1, "", " ") // the version 1 writer
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"v2": v2, "v1 JSON": v1} {
		got, err := UnmarshalState(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(comparable(got), comparable(p.m["a"].State())) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", name, comparable(got), comparable(p.m["a"].State()))
		}
		m, err := New(testConfig("a"), p.now)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Restore(got); err != nil {
			t.Fatalf("%s: restore: %v", name, err)
		}
		if !reflect.DeepEqual(comparable(m.State()), comparable(p.m["a"].State())) {
			t.Errorf("%s: restored state differs", name)
		}
	}
	if len(v2) >= len(v1)/3 {
		t.Errorf("version 2: %d bytes, JSON %d", len(v2), len(v1))
	}
}

// TestStateDamaged: a damaged or foreign file is an error that says so,
// never a panic or a partial state.
func TestStateDamaged(t *testing.T) {
	b, err := MarshalState(statePair(t).m["a"].State())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i++ {
		if _, err := UnmarshalState(b[:i]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", i, len(b))
		}
	}
	for _, c := range []struct{ in, want string }{
		{"hello", "not a state file"},
		{stateMagic + "\x07", "version 7, want 2"},
		{`{"version": 3}`, "version 3, want 1"},
		{`{"version": 1, "out": [`, "presence: state (JSON)"},
	} {
		if _, err := UnmarshalState([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

// FuzzUnmarshalState: any file decodes or fails cleanly, and what decodes
// restores without panicking.
func FuzzUnmarshalState(f *testing.F) {
	p := newPair(f)
	p.local("b", "<presence from='carol@b.test/phone' to='ann@a.test' id='i1'><show>away</show></presence>")
	p.advance(p.m["b"].cfg.Window)
	b, err := MarshalState(p.m["a"].State())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	j, _ := json.Marshal(State{Version: 1, In: []EntryState{{JID: "c@b.test/r", Payload: "<show>away</show>", Rcpt: []string{"ann@a.test"}}}})
	f.Add(j)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalState(b)
		if err != nil {
			return
		}
		m, err := New(testConfig("a"), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Restore(s)
	})
}
