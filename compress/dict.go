package compress

import (
	_ "embed"
)

// embeddedDict is the zstd dictionary trained on the corpus in
// testdata/corpus (see `make dict`): it primes every epoch, so the first
// stanzas after a (re)start cost little more than the steady state.
//
//go:embed dict/isthmus.zdict
var embeddedDict []byte

// Dictionary returns the embedded dictionary (empty if none was built).
// Callers must not modify it.
func Dictionary() []byte { return embeddedDict }
