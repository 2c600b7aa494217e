package compress

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
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

// DictID identifies isthmus dictionaries in zstd frames.
const DictID = 0x157A0001

// TrainDict builds a zstd dictionary for the codec from captured streams
// (each the stanzas of one S2S stream, in order). The dictionary is trained
// on the structural form as an epoch starts (empty tables), which is what it
// primes: the first stanzas after a (re)start. The result depends only on
// the input (and its order: `make dict` sorts the file names).
func TrainDict(streams [][][]byte) ([]byte, error) {
	// The history (the dictionary's content) is the start of every
	// stream's structural form, an equal share each.
	const histMax = 110 << 10
	var contents [][]byte
	var hist []byte
	share := histMax / max(len(streams), 1)
	for _, st := range streams {
		se := structEncoder{t: newTables(true)}
		n := 0
		for _, s := range st {
			se.out = se.out[:0]
			se.stanza(s)
			tok := bytes.Clone(se.out)
			contents = append(contents, tok)
			if n+len(tok) <= share {
				hist = append(hist, tok...)
				n += len(tok)
			}
		}
	}
	if len(contents) < 16 {
		return nil, errors.New("compress: train: need at least 16 stanzas")
	}
	d, err := zstd.BuildDict(zstd.BuildDictOptions{
		ID:       DictID,
		Contents: contents,
		History:  hist,
		Offsets:  [3]int{1, 4, 8},
		Level:    zstd.SpeedBetterCompression,
	})
	if err != nil {
		return nil, fmt.Errorf("compress: train: %w", err)
	}
	return d, nil
}
