package compress

import (
	"bytes"
	"path/filepath"
	"testing"
)

// benchCorpus is the held-out part of the shipped corpus.
func benchCorpus(b *testing.B) [][]byte {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*seed9*.xml.gz"))
	var all [][]byte
	for _, f := range files {
		st, err := ReadCapture(f)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, st...)
	}
	if len(all) == 0 {
		b.Skip("no corpus")
	}
	return all
}

func rawSize(st [][]byte) int64 {
	n := 0
	for _, s := range st {
		n += len(s)
	}
	return int64(n)
}

func benchEncode(b *testing.B, batch int) {
	st := benchCorpus(b)
	b.SetBytes(rawSize(st))
	b.ReportAllocs()
	for b.Loop() {
		e, _ := NewEncoder()
		for i := 0; i < len(st); i += batch {
			if _, err := e.Encode(st[i:min(i+batch, len(st))]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchDecode(b *testing.B, batch int) {
	st := benchCorpus(b)
	e, _ := NewEncoder()
	var blocks [][]byte
	for i := 0; i < len(st); i += batch {
		blk, err := e.Encode(st[i:min(i+batch, len(st))])
		if err != nil {
			b.Fatal(err)
		}
		blocks = append(blocks, bytes.Clone(blk))
	}
	b.SetBytes(rawSize(st))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := NewDecoder()
		for _, blk := range blocks {
			if _, err := d.Decode(blk); err != nil {
				b.Fatal(err)
			}
		}
		d.Close()
	}
}

func BenchmarkEncodeBatch1(b *testing.B)  { benchEncode(b, 1) }
func BenchmarkEncodeBatch16(b *testing.B) { benchEncode(b, 16) }
func BenchmarkDecodeBatch1(b *testing.B)  { benchDecode(b, 1) }
func BenchmarkDecodeBatch16(b *testing.B) { benchDecode(b, 16) }
