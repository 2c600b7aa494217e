package compress

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// gateway is one end of a link as far as the codec goes: its encoder
// (this end → peer) and decoder (peer → this end), and the two id logs.
type gateway struct {
	enc        *Encoder
	dec        *Decoder
	sent, recv *IDLog
}

func newGateway(t testing.TB, echo bool) *gateway {
	t.Helper()
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Close)
	g := &gateway{enc: enc, dec: dec, sent: NewIDLog(), recv: NewIDLog()}
	if echo {
		enc.LogIDs(g.sent)
		enc.EchoIDs(g.recv)
		dec.LogIDs(g.recv)
		dec.EchoIDs(g.sent)
	}
	return g
}

// sessionPairs are the two directions of each held-out session in
// testdata/corpus: SERVER-CLIENTS-FROM2TO and the other server's TO2FROM.
func sessionPairs(t testing.TB, clients ...string) [][2]string {
	var pairs [][2]string
	for _, c := range clients {
		for _, d := range [...][2]string{{"ej2pr", "pr2ej"}, {"ej2prmuc", "prmuc2ej"}, {"ejmuc2pr", "pr2ejmuc"}} {
			pairs = append(pairs, [2]string{
				fmt.Sprintf("ejabberd-%s-%s-1.xml.gz", c, d[0]),
				fmt.Sprintf("prosody-%s-%s-1.xml.gz", c, d[1]),
			})
		}
	}
	return pairs
}

// replay carries the two directions of a session through two gateways in
// the order Interleave gives, one stanza a block, and returns the block
// bytes. Every stanza must decode to what a codec without echoes gives.
func replay(t *testing.T, x, y [][]byte, echo bool) (total int, echoed int) {
	t.Helper()
	a, b := newGateway(t, echo), newGateway(t, echo)
	ref := [2]*gateway{newGateway(t, false), newGateway(t, false)}
	st := [2][][]byte{x, y}
	var pos [2]int
	for _, s := range Interleave(x, y) {
		in := st[s][pos[s]]
		pos[s]++
		src, dst := a, b
		if s == 1 {
			src, dst = b, a
		}
		block, err := src.enc.Encode([][]byte{in})
		if err != nil {
			t.Fatalf("stream %d stanza %d: %v", s, pos[s]-1, err)
		}
		total += len(block)
		got, err := dst.dec.Decode(block)
		if err != nil {
			t.Fatalf("stream %d stanza %d: %v\n%s", s, pos[s]-1, err, in)
		}
		rb, err := ref[s].enc.Encode([][]byte{in})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref[s].dec.Decode(rb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[0], want[0]) {
			t.Fatalf("stream %d stanza %d:\ngot  %s\nwant %s", s, pos[s]-1, got[0], want[0])
		}
	}
	return total, a.enc.st.echoed + b.enc.st.echoed
}

// TestEchoHeldOutSessions replays both directions of every held-out
// session (set A's generators and aioxmpp) through two gateways with and
// without echoed ids: each stanza comes back as without echoes, and echoes
// must save bytes on every generator.
func TestEchoHeldOutSessions(t *testing.T) {
	for _, clients := range []string{"slixmpp", "mellium", "aioxmpp"} {
		t.Run(clients, func(t *testing.T) {
			var with, without, n, echoed int
			for _, p := range sessionPairs(t, clients) {
				x := learnCorpus(t, p[0])
				y := learnCorpus(t, p[1])
				w, e := replay(t, x, y, true)
				wo, _ := replay(t, x, y, false)
				with, without, echoed = with+w, without+wo, echoed+e
				n += len(x) + len(y)
			}
			t.Logf("%s: %d stanzas, %d ids echoed; %.1f -> %.1f B/stanza at batch 1 (%.1f%% less)", clients, n, echoed,
				float64(without)/float64(n), float64(with)/float64(n), 100*(1-float64(with)/float64(without)))
			if echoed == 0 || with >= without {
				t.Fatalf("echoes saved nothing: %d ids echoed, %d B with, %d B without", echoed, with, without)
			}
		})
	}
}

// TestEchoGenerations: a decoder resolves echoes of the current and the
// previous generation of its sent log, refuses any other, and an encoder
// names the new generation after Start.
func TestEchoGenerations(t *testing.T) {
	a, b := newGateway(t, true), newGateway(t, true)
	a.recv.Start(7)
	b.sent.Start(7)
	msg := func(id string) []byte {
		return []byte(`<message from='x@b.test/r' to='y@a.test' id='` + id + `' type='chat'><body>hi</body></message>`)
	}
	receipt := func(id string) []byte {
		return []byte(`<message from='y@a.test/r' to='x@b.test/r' id='r` + id + `'><received xmlns='urn:xmpp:receipts' id='` + id + `'/></message>`)
	}
	send := func(from, to *gateway, st []byte) ([]byte, error) {
		t.Helper()
		block, err := from.enc.Encode([][]byte{st})
		if err != nil {
			t.Fatal(err)
		}
		got, err := to.dec.Decode(block)
		if err != nil {
			return block, err
		}
		if !bytes.Equal(got[0], st) {
			t.Fatalf("got %s, want %s", got[0], st)
		}
		return block, nil
	}
	id := func(i int) string { return fmt.Sprintf("%032x", i*7919+123456789) }
	for i := range 3 {
		if _, err := send(b, a, msg(id(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := send(a, b, receipt(id(i))); err != nil {
			t.Fatal(err)
		}
	}
	// The three ids echo (and the domains of the JIDs, values a's
	// tables had not seen).
	if a.enc.st.echoed < 3 {
		t.Fatalf("echoed %d values, want the 3 ids at least", a.enc.st.echoed)
	}
	echoed := a.enc.st.echoed
	// B→A starts a new epoch: both logs start generation 8; an echo of the
	// previous generation still resolves, and the new one is named.
	a.recv.Start(8)
	b.sent.Start(8)
	if err := b.enc.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := a.dec.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := send(b, a, msg(id(10))); err != nil {
		t.Fatal(err)
	}
	if _, err := send(a, b, receipt(id(10))); err != nil {
		t.Fatal(err)
	}
	if a.enc.st.echoed != echoed+1 {
		t.Fatalf("echoed %d values after the new generation, want 1", a.enc.st.echoed-echoed)
	}
	// A reference to a generation B no longer holds is corrupt, not a
	// wrong id.
	if _, err := send(b, a, msg(id(11))); err != nil {
		t.Fatal(err)
	}
	b.sent.Start(9)
	b.sent.add(id(20)) // (an empty generation is replaced, not kept)
	b.sent.Start(10)
	if _, err := send(a, b, receipt(id(11))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("echo of a dropped generation: %v, want ErrCorrupt", err)
	}
}

// TestEchoWindow: an id further back than echoWindow in the log crosses
// whole, and a decoder refuses a number its log no longer holds.
func TestEchoWindow(t *testing.T) {
	l := NewIDLog()
	for i := range echoLogSize + 10 {
		l.add(fmt.Sprintf("id-%08d", i))
	}
	if _, _, ok := l.find([]byte("id-00000000")); ok {
		t.Fatal("found an id the log dropped")
	}
	if _, _, ok := l.find([]byte(fmt.Sprintf("id-%08d", echoLogSize+10-echoWindow-1))); ok {
		t.Fatal("found an id outside the window")
	}
	if i, _, ok := l.find([]byte(fmt.Sprintf("id-%08d", echoLogSize+10-echoWindow))); !ok || i != echoLogSize+10-echoWindow {
		t.Fatalf("the window's oldest id: %d %v", i, ok)
	}
	if _, err := l.get(0, 5); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Fatalf("get of a dropped id: %v", err)
	}
	if v, err := l.get(0, echoLogSize+9); err != nil || v != fmt.Sprintf("id-%08d", echoLogSize+9) {
		t.Fatalf("get of the newest id: %q %v", v, err)
	}
	if _, err := l.get(0, echoLogSize+10); err == nil {
		t.Fatal("get past the end")
	}
}

// TestEchoLogBounded: what a peer sends cannot make a log hold more than
// echoLogSize entries of at most echoValueMax bytes per generation: a
// stream of stanzas with huge ids and texts leaves it within that bound.
func TestEchoLogBounded(t *testing.T) {
	a, b := newGateway(t, true), newGateway(t, true)
	big := strings.Repeat("x", 4000)
	for i := range echoLogSize + 100 {
		st := fmt.Appendf(nil, `<message from='x@b.test/r' to='y@a.test' id='%s%d'><body>%s%d</body></message>`, big, i, big, i)
		block, err := b.enc.Encode([][]byte{st})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.dec.Decode(block); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []*IDLog{a.recv, b.sent} {
		n, total := 0, 0
		for _, g := range l.gens {
			for _, v := range g.vals {
				if v != "" {
					n++
					total += len(v)
				}
			}
		}
		if total > 2*echoLogSize*echoValueMax {
			t.Fatalf("the log holds %d bytes in %d entries, above %d", total, n, 2*echoLogSize*echoValueMax)
		}
	}
}

// TestIDLogRetainUnacked: a sent log keeps everything the peer has not
// acknowledged (and echoWindow before it), beyond echoLogSize, and lets go
// of the rest once acknowledged.
func TestIDLogRetainUnacked(t *testing.T) {
	l := NewIDLog()
	l.RetainUnacked()
	l.Start(5)
	const n = 3 * echoLogSize
	for i := range n {
		l.add(fmt.Sprintf("v%08d", i))
	}
	if v, err := l.get(5, 0); err != nil || v != "v00000000" {
		t.Fatalf("nothing acknowledged: entry 0 = %q, %v", v, err)
	}
	l.Acked(5, 2*echoLogSize)
	if _, err := l.get(5, 2*echoLogSize-echoWindow-1); err == nil {
		t.Fatal("an entry before the window of the acknowledged ones is kept")
	}
	if v, err := l.get(5, 2*echoLogSize-echoWindow); err != nil || v != fmt.Sprintf("v%08d", 2*echoLogSize-echoWindow) {
		t.Fatalf("the window's first entry: %q, %v", v, err)
	}
	l.Acked(5, n)
	for range 10 {
		l.add("x")
	}
	if l.gens[0].n-l.gens[0].base != echoLogSize {
		t.Fatalf("after acknowledging all: %d entries kept, want %d", l.gens[0].n-l.gens[0].base, echoLogSize)
	}
	// A log without RetainUnacked keeps the last echoLogSize only.
	r := NewIDLog()
	for i := range n {
		r.add(fmt.Sprintf("v%08d", i))
	}
	if r.maxStore != echoLogSize {
		t.Fatalf("a received log held %d entries, want %d", r.maxStore, echoLogSize)
	}
}

// TestIDLogRetainBounded: with RetainUnacked and no acknowledgement (a
// stall with a backlog), a sent log keeps at most echoRetainMax entries,
// whatever the backlog.
func TestIDLogRetainBounded(t *testing.T) {
	enc, err := NewEncoder(WithDict(nil))
	if err != nil {
		t.Fatal(err)
	}
	l := NewIDLog()
	l.RetainUnacked()
	l.Start(5)
	enc.LogIDs(l)
	c := 0
	for range 200 {
		var b bytes.Buffer
		b.WriteString("<message to='u@b.test' from='v@a.test'><x xmlns='y'>")
		for range 500 {
			fmt.Fprintf(&b, "<v>v%07d</v>", c)
			c++
		}
		b.WriteString("</x></message>")
		if _, err := enc.Encode([][]byte{b.Bytes()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := l.Len(); n < uint64(c) {
		t.Fatalf("logged %d values, want %d at least", n, c)
	}
	if l.maxStore > echoRetainMax+1 {
		t.Fatalf("the log held %d entries, above %d", l.maxStore, echoRetainMax)
	}
}
