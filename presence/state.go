package presence

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// StateVersion is the version of the persisted state format.
const StateVersion = 1

// State is the mirror's persistent state: both tables and the caps cache.
// It is written as JSON (see the package doc).
type State struct {
	Version int          `json:"version"`
	Out     []EntryState `json:"out"` // this side's contacts
	In      []EntryState `json:"in"`  // the other side's contacts
	Caps    []CapsState  `json:"caps"`
}

// EntryState is one mirror entry.
type EntryState struct {
	JID       string    `json:"jid"` // contact full JID
	Payload   string    `json:"payload"`
	ID        string    `json:"id,omitempty"` // id of the stanza that carried Payload
	Rcpt      []string  `json:"rcpt"`
	Confirmed time.Time `json:"confirmed"`
}

// CapsState is one cached disco#info, by caps node#ver.
type CapsState struct {
	Node  string `json:"node"`
	Query string `json:"query"`
}

// State returns the state to persist and clears Dirty.
func (m *Mirror) State() State {
	m.dirty = false
	s := State{Version: StateVersion}
	dump := func(t *table) []EntryState {
		var out []EntryState
		for _, k := range t.keys() {
			e := t.get(k[0], k[1])
			out = append(out, EntryState{JID: key(k[0], k[1]), Payload: e.payload, ID: e.id, Rcpt: sortedKeys(e.rcpt), Confirmed: e.confirmed})
		}
		return out
	}
	s.Out, s.In = dump(&m.out), dump(&m.in)
	for _, n := range m.caps.order {
		s.Caps = append(s.Caps, CapsState{Node: n, Query: m.caps.q[n]})
	}
	return s
}

// Restore replaces the tables and the cache with s (at start-up). Entries
// keep their confirmation times, so what went stale while the gateway was
// down times out at the next Tick.
func (m *Mirror) Restore(s State) error {
	if s.Version != StateVersion {
		return fmt.Errorf("presence: state version %d, want %d", s.Version, StateVersion)
	}
	load := func(t *table, es []EntryState) error {
		*t = newTable()
		for _, es := range es {
			a, ok := parseAddr(es.JID)
			if !ok || a.res == "" || a.local == "" {
				return fmt.Errorf("presence: state: bad entry JID %q", es.JID)
			}
			if t.n >= m.cfg.MaxEntries {
				break
			}
			e := &entry{payload: es.Payload, id: es.ID, rcpt: map[string]bool{}, confirmed: es.Confirmed}
			for _, r := range es.Rcpt {
				e.rcpt[r] = true
			}
			t.put(a.bare(), a.res, e)
		}
		return nil
	}
	if err := load(&m.out, s.Out); err != nil {
		return err
	}
	if err := load(&m.in, s.In); err != nil {
		return err
	}
	m.caps = newCapsCache()
	for _, c := range s.Caps {
		// Entries cached by versions without the XEP-0115 §5.4 checks
		// are verified again; those that fail them are dropped.
		if !capsRestorable(c.Node, c.Query) {
			m.c.CapsRefused++
			continue
		}
		m.caps.put(c.Node, c.Query)
	}
	return nil
}

// MarshalState encodes s for the state file.
func MarshalState(s State) ([]byte, error) { return json.MarshalIndent(s, "", " ") }

// UnmarshalState decodes a state file.
func UnmarshalState(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("presence: state: %w", err)
	}
	return s, nil
}

// capsRestorable reports whether a cached query from a state file passes the
// checks of verifyCaps for its node#ver with one of the known algorithms.
func capsRestorable(nodeVer, inner string) bool {
	i := strings.LastIndexByte(nodeVer, '#')
	if i < 0 {
		return false
	}
	q, err := parseElement([]byte("<query xmlns='" + nsDisco + "'>" + inner + "</query>"))
	if err != nil {
		return false
	}
	for algo := range capsHashes {
		if verifyCaps(&q, algo, nodeVer[i+1:]) == nil {
			return true
		}
	}
	return false
}
