package compress

import (
	"flag"
	"path/filepath"
	"sort"
	"testing"
)

var fieldsGlob = flag.String("fields", "", "print where the structural bytes go on the captures matching this glob (relative to testdata/corpus)")

// TestFieldAccounting prints the structural form's bytes per field (before
// zstd) on a corpus: the tuning aid behind the codec's choices.
func TestFieldAccounting(t *testing.T) {
	if *fieldsGlob == "" {
		t.Skip("run with -fields GLOB")
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", *fieldsGlob))
	acct := map[string]int{}
	kinds := map[string]int{}
	n := 0
	for _, f := range files {
		st, err := ReadCapture(f)
		if err != nil {
			t.Fatal(err)
		}
		e := structEncoder{t: newTables(true), acct: map[string]int{}}
		for _, s := range st {
			p := len(e.out)
			e.stanza(s)
			kinds[Kind(s)] += len(e.out) - p
		}
		for k, v := range e.acct {
			acct[k] += v
		}
		n += len(st)
	}
	type kv struct {
		k string
		v int
	}
	var all []kv
	total := 0
	for k, v := range acct {
		all = append(all, kv{k, v})
		total += v
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	t.Logf("%d stanzas, %.2f structural B/stanza (message %.1f, presence %.1f, iq %.1f per stanza overall)", n, float64(total)/float64(n),
		float64(kinds["message"])/float64(n), float64(kinds["presence"])/float64(n), float64(kinds["iq"])/float64(n))
	for _, x := range all {
		t.Logf("%-28s %8.3f B/stanza %5.1f%%", x.k, float64(x.v)/float64(n), 100*float64(x.v)/float64(total))
	}
}
