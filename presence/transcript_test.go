package presence

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/presence/*.txt")

// pair is two mirrors joined by an ideal link, as in the transcripts:
// gateway a serves a.test, gateway b serves b.test.
type pair struct {
	t     testing.TB
	now   time.Time
	m     map[string]*Mirror
	up    bool
	held  []heldStanza // link-bound stanzas while the link is down
	out   []string
	other map[string]string
}

type heldStanza struct {
	to string
	st Stanza
}

func testConfig(side string) Config {
	self, peer := "a.test", "b.test"
	if side == "b" {
		self, peer = peer, self
	}
	return Config{Self: self, Peer: peer, Window: 30 * time.Millisecond, Refresh: 5 * time.Minute,
		Reprobe: 10 * time.Minute, Timeout: 30 * time.Minute}
}

func newPair(t testing.TB) *pair {
	p := &pair{t: t, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), m: map[string]*Mirror{},
		other: map[string]string{"a": "b", "b": "a"}}
	for _, s := range []string{"a", "b"} {
		m, err := New(testConfig(s), p.now)
		if err != nil {
			t.Fatal(err)
		}
		p.m[s] = m
	}
	p.setLink(true, false)
	return p
}

func (p *pair) printf(format string, args ...any) {
	p.out = append(p.out, fmt.Sprintf(format, args...))
}

// setLink takes the link down or up. Coming up, the stanzas held while it
// was down arrive first, as the link session resends its unacknowledged
// stanzas before new ones; lose drops them instead (a peer that lost its
// spool).
func (p *pair) setLink(up, lose bool) {
	p.up = up
	if up {
		held := p.held
		p.held = nil
		if lose {
			p.printf("(%d stanzas lost)", len(held))
			held = nil
		}
		for _, h := range held {
			p.arrive(h.to, h.st)
		}
	}
	for _, s := range []string{"a", "b"} {
		p.m[s].SetLink(p.now, up)
		p.drain(s)
	}
}

// local feeds a stanza from side's local server to its gateway.
func (p *pair) local(side string, raw string) {
	st := mustStanza(p.t, raw)
	if !p.m[side].FromLocal(p.now, st) {
		p.printf("%s: pass", side)
		p.toLink(side, st)
	}
	p.drain(side)
}

func (p *pair) toLink(side string, st Stanza) {
	p.printf("%s>link %s", side, st.Raw)
	peer := p.other[side]
	if !p.up {
		p.held = append(p.held, heldStanza{peer, st})
		return
	}
	p.arrive(peer, st)
}

func (p *pair) arrive(side string, st Stanza) {
	if !p.m[side].FromPeer(p.now, st) {
		p.printf("%s>local %s", side, st.Raw)
	}
	p.drain(side)
}

func (p *pair) drain(side string) {
	for _, a := range p.m[side].Actions() {
		if a.Dest == ToLocal {
			p.printf("%s>local %s", side, a.Stanza.Raw)
			continue
		}
		p.toLink(side, a.Stanza)
	}
}

func (p *pair) advance(d time.Duration) {
	end := p.now.Add(d)
	for {
		next := end
		for _, s := range []string{"a", "b"} {
			if n := p.m[s].Next(); n.Before(next) {
				next = n
			}
		}
		if next.Before(p.now) {
			next = p.now
		}
		p.now = next
		for _, s := range []string{"a", "b"} {
			p.m[s].Tick(p.now)
			p.drain(s)
		}
		if !p.now.Before(end) {
			return
		}
	}
}

func (p *pair) restart(side string) {
	b, err := MarshalState(p.m[side].State())
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := UnmarshalState(b)
	if err != nil {
		p.t.Fatal(err)
	}
	m, err := New(testConfig(side), p.now)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := m.Restore(s); err != nil {
		p.t.Fatal(err)
	}
	p.m[side] = m
	m.SetLink(p.now, p.up)
	p.drain(side)
}

func (p *pair) dump(side string) {
	s := p.m[side].State()
	for _, e := range s.Out {
		p.printf("out %s rcpt=%s confirmed=%s %s", e.JID, strings.Join(e.Rcpt, ","), e.Confirmed.Sub(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), e.Payload)
	}
	for _, e := range s.In {
		p.printf("in %s rcpt=%s confirmed=%s %s", e.JID, strings.Join(e.Rcpt, ","), e.Confirmed.Sub(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), e.Payload)
	}
	for _, c := range s.Caps {
		p.printf("caps %s", c.Node)
	}
}

func (p *pair) counters(side string) {
	c := p.m[side].Counters()
	p.printf("%+v", c)
}

func mustStanza(t testing.TB, raw string) Stanza {
	t.Helper()
	n, err := parseElement([]byte(raw))
	if err != nil {
		t.Fatalf("bad stanza %q: %v", raw, err)
	}
	return Stanza{Name: n.local, From: n.attr("from"), To: n.attr("to"), Type: n.attr("type"), ID: n.attr("id"), Raw: []byte(raw)}
}

func (p *pair) run(cmd string) error {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "a", "b":
		p.local(verb, arg)
	case "advance":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return err
		}
		p.advance(d)
	case "link":
		p.setLink(arg != "down", arg == "up-lost")
	case "restart":
		p.restart(arg)
	case "dump":
		p.dump(arg)
	case "counters":
		p.counters(arg)
	default:
		return fmt.Errorf("unknown command %q", verb)
	}
	return nil
}

// TestTranscripts runs testdata/presence/*.txt: each file is a sequence of
//
//	command
//	----
//	expected output lines
//	(blank line)
//
// Commands: "a XML" / "b XML" (a stanza from that side's local server),
// "advance DURATION", "link up|down|up-lost", "restart a|b", "dump a|b",
// "counters a|b". Lines starting with # are comments. Run with -rewrite to
// regenerate the expected output.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/presence/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	p := newPair(t)
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			continue
		}
		cmd := l
		line := i + 1
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command without ---- line", file, line)
		}
		var want []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		p.out = nil
		if err := p.run(cmd); err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		got := p.out
		if len(got) == 0 {
			got = []string{"(nothing)"}
		}
		out.WriteString(cmd + "\n----\n" + strings.Join(got, "\n") + "\n\n")
		if !*rewrite && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, line, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
