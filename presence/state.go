package presence

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// StateVersion is the version of the state file format written by
// MarshalState. Version 1 was JSON; UnmarshalState still reads it.
const StateVersion = 2

// stateMagic starts a state file of version 2 and later; the version byte
// follows it.
const stateMagic = "isthmus-presence\n"

// maxStateBytes bounds the decompressed body of a state file.
const maxStateBytes = 1 << 30

// State is the mirror's persistent state: both tables and the caps cache.
// MarshalState writes it in the format of the package doc (# Persistence).
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

	kids []string // Payload's children, when known (State, UnmarshalState)
}

// CapsState is one cached disco#info, by caps node#ver.
type CapsState struct {
	Node  string `json:"node"`
	Query string `json:"query"`
}

// State returns the state to persist and clears Dirty. It shares its
// strings with the mirror (they are never modified), so the caller may
// encode it without holding the mirror.
func (m *Mirror) State() State {
	m.dirty = false
	s := State{Version: StateVersion}
	dump := func(t *table) []EntryState {
		out := make([]EntryState, 0, t.n)
		for _, k := range t.keys() {
			e := t.get(k[0], k[1])
			kids := make([]string, e.npl)
			for i, id := range e.ids[:e.npl] {
				kids[i] = t.s.str(id)
			}
			out = append(out, EntryState{JID: key(k[0], k[1]), Payload: strings.Join(kids, ""), kids: kids,
				ID: e.id, Rcpt: t.rcpts(e), Confirmed: e.confirmed.time()})
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
// down times out at the next Tick. Entries beyond MaxEntries or MaxBytes are
// left out (counted in Full and FullBytes).
func (m *Mirror) Restore(s State) error {
	if s.Version != StateVersion {
		return fmt.Errorf("presence: state version %d, want %d", s.Version, StateVersion)
	}
	strs := newInterner()
	load := func(t *table, es []EntryState) error {
		*t = newTable(strs)
		for _, es := range es {
			a, ok := parseAddr(es.JID)
			if !ok || a.res == "" || a.local == "" {
				return fmt.Errorf("presence: state: bad entry JID %q", es.JID)
			}
			kids := es.kids
			if kids == nil && es.Payload != "" {
				p, err := parseElement([]byte("<presence>" + es.Payload + "</presence>"))
				if err != nil {
					return fmt.Errorf("presence: state: entry %s: payload: %w", es.JID, err)
				}
				kids = payloadKids(&p)
			}
			if len(es.Rcpt) == 0 {
				continue // no recipient: no entry (earlier versions kept some)
			}
			if t.n >= m.cfg.MaxEntries {
				m.c.Full++
				continue
			}
			if t.bytes+entrySize(a.bare(), a.res, es.ID, kids, es.Rcpt) > m.cfg.MaxBytes {
				m.c.FullBytes++
				continue
			}
			t.create(a.bare(), a.res, kids, es.ID, es.Rcpt, es.Confirmed)
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

// MarshalState encodes s for the state file: stateMagic, the version byte,
// then the body compressed with DEFLATE (RFC 1951). The body is made of
// unsigned varints (u) and strings (s: u length, then the bytes):
//
//	u count, s × count          strings shared by the entries: payload children and recipient JIDs
//	u base                      Unix nanoseconds that confirmation times are counted from
//	two tables, out then in:
//	  u entries, then each:
//	    s JID, s id, u confirmed − base
//	    u children, u × children      string numbers, the payload's children in order
//	    u recipients, u × recipients  string numbers
//	u caps, then each: s node#ver, s query
func MarshalState(s State) ([]byte, error) {
	var body []byte
	putU := func(v uint64) { body = binary.AppendUvarint(body, v) }
	putS := func(x string) { putU(uint64(len(x))); body = append(body, x...) }

	strs := map[string]uint64{}
	var order []string
	num := func(x string) uint64 {
		if n, ok := strs[x]; ok {
			return n
		}
		strs[x] = uint64(len(order))
		order = append(order, x)
		return strs[x]
	}
	type enc struct {
		kids, rcpt []uint64
	}
	var base int64
	first := true
	encs := make([][]enc, 2)
	for ti, es := range [][]EntryState{s.Out, s.In} {
		encs[ti] = make([]enc, len(es))
		for i := range es {
			kids := es[i].kids
			if kids == nil && es[i].Payload != "" {
				p, err := parseElement([]byte("<presence>" + es[i].Payload + "</presence>"))
				if err != nil {
					return nil, fmt.Errorf("presence: state: entry %s: payload: %w", es[i].JID, err)
				}
				kids = payloadKids(&p)
			}
			for _, k := range kids {
				encs[ti][i].kids = append(encs[ti][i].kids, num(k))
			}
			for _, r := range es[i].Rcpt {
				encs[ti][i].rcpt = append(encs[ti][i].rcpt, num(r))
			}
			if c := es[i].Confirmed.UnixNano(); first || c < base {
				base, first = c, false
			}
		}
	}
	putU(uint64(len(order)))
	for _, x := range order {
		putS(x)
	}
	putU(uint64(base))
	for ti, es := range [][]EntryState{s.Out, s.In} {
		putU(uint64(len(es)))
		for i, e := range es {
			putS(e.JID)
			putS(e.ID)
			putU(uint64(e.Confirmed.UnixNano() - base))
			for _, l := range [][]uint64{encs[ti][i].kids, encs[ti][i].rcpt} {
				putU(uint64(len(l)))
				for _, n := range l {
					putU(n)
				}
			}
		}
	}
	putU(uint64(len(s.Caps)))
	for _, c := range s.Caps {
		putS(c.Node)
		putS(c.Query)
	}

	var out bytes.Buffer
	out.WriteString(stateMagic)
	out.WriteByte(StateVersion)
	w, err := flate.NewWriter(&out, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// errState is wrapped by the errors of UnmarshalState for a damaged file.
var errState = errors.New("presence: state: damaged")

// UnmarshalState decodes a state file: version 2 (MarshalState), or
// version 1 (JSON, written by earlier versions).
func UnmarshalState(b []byte) (State, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var s State
		if err := json.Unmarshal(b, &s); err != nil {
			return State{}, fmt.Errorf("presence: state (JSON): %w", err)
		}
		if s.Version != 1 {
			return State{}, fmt.Errorf("presence: state (JSON): version %d, want 1", s.Version)
		}
		s.Version = StateVersion // same content
		return s, nil
	}
	if !bytes.HasPrefix(b, []byte(stateMagic)) || len(b) == len(stateMagic) {
		return State{}, errors.New("presence: state: not a state file (no isthmus-presence header, not JSON)")
	}
	if v := b[len(stateMagic)]; v != StateVersion {
		return State{}, fmt.Errorf("presence: state: version %d, want %d", v, StateVersion)
	}
	body, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b[len(stateMagic)+1:])), maxStateBytes+1))
	if err != nil {
		return State{}, fmt.Errorf("%w: %v", errState, err)
	}
	if len(body) > maxStateBytes {
		return State{}, fmt.Errorf("%w: body beyond %d bytes", errState, maxStateBytes)
	}
	d := stateDecoder{b: body}
	s := d.state()
	if d.err != nil {
		return State{}, d.err
	}
	return s, nil
}

// stateDecoder reads the body of a version 2 state file; the first fault
// sets err and makes every later read return zero.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s (%d bytes from the end)", errState, fmt.Sprintf(format, args...), len(d.b))
	}
	d.b = nil
}

func (d *stateDecoder) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items that take at least one byte each.
func (d *stateDecoder) count() int {
	v := d.u()
	if v > uint64(len(d.b)) {
		d.fail("count %d beyond the data", v)
		return 0
	}
	return int(v)
}

func (d *stateDecoder) s() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	x := string(d.b[:n])
	d.b = d.b[n:]
	return x
}

func (d *stateDecoder) state() State {
	s := State{Version: StateVersion}
	strs := make([]string, d.count())
	for i := range strs {
		strs[i] = d.s()
	}
	ref := func() string {
		n := d.u()
		if n >= uint64(len(strs)) {
			d.fail("string %d of %d", n, len(strs))
			return ""
		}
		return strs[n]
	}
	base := int64(d.u())
	for _, t := range []*[]EntryState{&s.Out, &s.In} {
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			e := EntryState{JID: d.s(), ID: d.s(), Confirmed: time.Unix(0, base+int64(d.u())).UTC()}
			e.kids = make([]string, d.count())
			for j := range e.kids {
				e.kids[j] = ref()
			}
			e.Payload = strings.Join(e.kids, "")
			e.Rcpt = make([]string, d.count())
			for j := range e.Rcpt {
				e.Rcpt[j] = ref()
			}
			*t = append(*t, e)
		}
	}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		s.Caps = append(s.Caps, CapsState{Node: d.s(), Query: d.s()})
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the caps", len(d.b))
	}
	return s
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
