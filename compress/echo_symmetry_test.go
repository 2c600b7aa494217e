package compress

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
)

// logEntries returns the kept entries of the current generation and its n.
func logEntries(l *IDLog) (uint64, uint64, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := &l.gens[0]
	return g.n, g.base, append([]string(nil), g.vals[g.head:]...)
}

func sameLogs(t *testing.T, what string, x, y *IDLog) {
	t.Helper()
	nx, bx, vx := logEntries(x)
	ny, by, vy := logEntries(y)
	if nx != ny {
		// find first divergence
		b := max(bx, by)
		for i := b; i < min(nx, ny); i++ {
			if vx[i-bx] != vy[i-by] {
				t.Fatalf("%s: logs diverge at entry %d: enc %q dec %q (n %d vs %d)", what, i, vx[i-bx], vy[i-by], nx, ny)
			}
		}
		t.Fatalf("%s: enc log has %d entries, dec log %d; last enc %q, last dec %q", what, nx, ny, last(vx), last(vy))
	}
	b := max(bx, by)
	for i := b; i < nx; i++ {
		if vx[i-bx] != vy[i-by] {
			t.Fatalf("%s: logs differ at entry %d: enc %q dec %q", what, i, vx[i-bx], vy[i-by])
		}
	}
}

func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// replayBatches: like replay, with batches of up to k consecutive stanzas of
// one direction; checks logs agree after every block and output equals
// the no-echo reference.
func replayBatches(t *testing.T, x, y [][]byte, k int) (echoed int) {
	t.Helper()
	a, b := newGateway(t, true), newGateway(t, true)
	ref := [2]*gateway{newGateway(t, false), newGateway(t, false)}
	st := [2][][]byte{x, y}
	var pos [2]int
	order := Interleave(x, y)
	for i := 0; i < len(order); {
		s := order[i]
		j := i
		for j < len(order) && order[j] == s && j-i < k {
			j++
		}
		n := j - i
		i = j
		batch := st[s][pos[s] : pos[s]+n]
		pos[s] += n
		src, dst := a, b
		if s == 1 {
			src, dst = b, a
		}
		block, err := src.enc.Encode(batch)
		if err != nil {
			t.Fatalf("stream %d stanza %d: %v", s, pos[s]-n, err)
		}
		got, err := dst.dec.Decode(block)
		if err != nil {
			t.Fatalf("stream %d stanzas %d..%d: %v", s, pos[s]-n, pos[s], err)
		}
		rb, err := ref[s].enc.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref[s].dec.Decode(rb)
		if err != nil {
			t.Fatal(err)
		}
		for q := range want {
			if !bytes.Equal(got[q], want[q]) {
				t.Fatalf("stream %d stanza %d:\ngot  %s\nwant %s", s, pos[s]-n+q, got[q], want[q])
			}
		}
		sameLogs(t, fmt.Sprintf("stream %d after stanza %d", s, pos[s]), src.sent, dst.recv)
	}
	return a.enc.st.echoed + b.enc.st.echoed
}

// firstStanzas returns at most the first n stanzas of a capture.
func firstStanzas(st [][]byte, n int) [][]byte { return st[:min(n, len(st))] }

func corpusFiles(t *testing.T) []string {
	m, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*.xml.gz"))
	var out []string
	for _, f := range m {
		out = append(out, filepath.Base(f))
	}
	sort.Strings(out)
	return out
}

// TestEchoLogsAgreePairs replays every held-out session (both directions
// of one pair of servers) through two gateways in batches of 1 and 16
// stanzas of one direction, and checks after every block that the
// encoder's log and the peer decoder's log hold the same entries, and that
// each stanza decodes as without echoes.
func TestEchoLogsAgreePairs(t *testing.T) {
	for _, clients := range []string{"slixmpp", "mellium", "aioxmpp"} {
		for _, p := range sessionPairs(t, clients) {
			x, y := learnCorpus(t, p[0]), learnCorpus(t, p[1])
			for _, k := range []int{1, 16} {
				t.Run(fmt.Sprintf("%s/k%d", p[0], k), func(t *testing.T) {
					e := replayBatches(t, x, y, k)
					t.Logf("%d echoes", e)
				})
			}
		}
	}
}

// TestEchoLogsAgreeMixed does the same with captures of different
// generators as the two directions (every third file with the one five
// places later, their first 1,500 stanzas), in batches of up to 7.
func TestEchoLogsAgreeMixed(t *testing.T) {
	files := corpusFiles(t)
	for i := 0; i < len(files); i += 3 {
		j := (i + 5) % len(files)
		x, y := firstStanzas(learnCorpus(t, files[i]), 1500), firstStanzas(learnCorpus(t, files[j]), 1500)
		t.Run(files[i]+"+"+files[j], func(t *testing.T) {
			replayBatches(t, x, y, 7)
		})
	}
}

func runSeq(t *testing.T, a, b *gateway, ref [2]*gateway, dir int, batch [][]byte, what string) {
	t.Helper()
	src, dst := a, b
	if dir == 1 {
		src, dst = b, a
	}
	blk, err := src.enc.Encode(batch)
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	got, err := dst.dec.Decode(blk)
	if err != nil {
		t.Fatalf("%s: decode: %v", what, err)
	}
	rb, err := ref[dir].enc.Encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref[dir].dec.Decode(rb)
	if err != nil {
		t.Fatal(err)
	}
	for q := range want {
		if !bytes.Equal(got[q], want[q]) {
			t.Fatalf("%s stanza %d:\ngot  %s\nwant %s", what, q, got[q], want[q])
		}
	}
	sameLogs(t, what, src.sent, dst.recv)
}

// TestEchoLogsAgreeReflect sends every other capture (its first 1,500
// stanzas) one way in random batches
// and a random half of each batch straight back (as a MUC reflects), so
// that nearly every value echoes; logs and output are checked as above.
func TestEchoLogsAgreeReflect(t *testing.T) {
	for i, name := range corpusFiles(t) {
		if i%2 == 1 {
			continue // every other file: the test's cost under -race
		}
		t.Run(name, func(t *testing.T) {
			x := firstStanzas(learnCorpus(t, name), 1500)
			a, b := newGateway(t, true), newGateway(t, true)
			ref := [2]*gateway{newGateway(t, false), newGateway(t, false)}
			r := rand.New(rand.NewPCG(1, uint64(len(x))))
			echoed := 0
			for i := 0; i < len(x); {
				k := 1 + r.IntN(16)
				k = min(k, len(x)-i)
				batch := x[i : i+k]
				runSeq(t, a, b, ref, 0, batch, fmt.Sprintf("A %d..%d", i, i+k))
				// B reflects a random subset, in random batches
				var back [][]byte
				for _, s := range batch {
					if r.IntN(2) == 0 {
						back = append(back, s)
					}
				}
				if len(back) > 0 {
					runSeq(t, a, b, ref, 1, back, fmt.Sprintf("B reflects %d..%d", i, i+k))
				}
				i += k
			}
			echoed = a.enc.st.echoed + b.enc.st.echoed
			t.Logf("%d stanzas, %d echoes", len(x), echoed)
		})
	}
}
