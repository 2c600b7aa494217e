package config

import "testing"

func TestScanKeyLines(t *testing.T) {
	data := `# comment
name = "x" # trailing
a.b = 1
"q.d" . 'lit' = 2
text = """
fake = 1
"""
[ tbl . sub ]
k = 3
  [[arr]]
  e = 4
[local_domains]
"ship.example" = "h:1"
list = [
  "not = a key",
]
after = 5
`
	kl := scanKeyLines([]byte(data))
	want := map[string]int{
		"name":                         2,
		"a":                            3,
		"a.b":                          3,
		`"q.d"`:                        4,
		`"q.d".lit`:                    4,
		"text":                         5,
		"tbl":                          8,
		"tbl.sub":                      8,
		"tbl.sub.k":                    9,
		"arr":                          10,
		"arr.e":                        11,
		"local_domains":                12,
		`local_domains."ship.example"`: 13,
		"local_domains.list":           14,
		"local_domains.after":          17,
	}
	for k, l := range want {
		if got := kl.exact(k); got != l {
			t.Errorf("line of %s = %d, want %d", k, got, l)
		}
	}
	if got := kl.exact("fake"); got != 0 {
		t.Errorf("key inside a multi-line string found at line %d", got)
	}
	if got := kl.near("tbl.sub.missing"); got != 8 {
		t.Errorf("near(tbl.sub.missing) = %d, want 8", got)
	}
	if got := kl.near("nothing.here"); got != 0 {
		t.Errorf("near(nothing.here) = %d, want 0", got)
	}
	if len(kl) != len(want) {
		t.Errorf("scanned %d keys, want %d: %v", len(kl), len(want), kl)
	}
}
