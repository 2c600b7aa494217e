package compress

import (
	"bytes"
	"math/rand"
	"testing"
)

// FuzzRoundTrip: any bytes given as stanzas come back identical or with
// the same infoset, and the tables stay mirrored across batches.
func FuzzRoundTrip(f *testing.F) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 8; i++ {
		f.Add(randomStanza(r), randomStanza(r))
	}
	f.Add([]byte(`<presence from='a@b/c' to='d@e'/>`), []byte(`<presence from='a@b/c' to='f@e'/>`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) == 0 || len(b) == 0 {
			return
		}
		enc, _ := NewEncoder()
		dec, _ := NewDecoder()
		for _, batch := range [][][]byte{{a}, {b, a}, {b}, {a, b, a}} {
			blk, err := enc.Encode(batch)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.Decode(bytes.Clone(blk))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for i := range batch {
				if !bytes.Equal(got[i], batch[i]) && !EqualInfoset(got[i], batch[i]) {
					t.Fatalf("changed:\n got %q\nwant %q", got[i], batch[i])
				}
			}
		}
	})
}

// FuzzStructure feeds arbitrary structural forms to the decoder's tables
// and parser: errors, never panics or unbounded output.
func FuzzStructure(f *testing.F) {
	enc, _ := NewEncoder()
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 6; i++ {
		blk, _ := enc.Encode([][]byte{randomStanza(r)})
		f.Add(bytes.Clone(blk))
	}
	f.Add([]byte{modePlain1, flagTemplate, 0, formJID, 1, 0})
	f.Add([]byte{modePlain, 2, 0, 4, 0, 0, 0, 4, 0, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		dec, _ := NewDecoder()
		defer dec.Close()
		for i := 0; i < 3; i++ {
			batch, err := dec.Decode(block)
			if err != nil {
				return
			}
			for _, st := range batch {
				if len(st) > MaxStanzaSize {
					t.Fatalf("stanza of %d bytes", len(st))
				}
			}
		}
	})
}
