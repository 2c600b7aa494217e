package compress

import (
	"bytes"
	"path/filepath"
	"testing"
)

// benchCorpus is the held-out part of the shipped corpus.
func benchCorpus(b *testing.B) [][]byte {
	return benchFiles(b, filepath.Join("..", "testdata", "corpus", "*seed9*.xml.gz"))
}

// benchB64 is the base64 set (vCard photos, avatars, OMEMO).
func benchB64(b *testing.B) [][]byte {
	return benchFiles(b, filepath.Join("..", "testdata", "b64", "*.xml.gz"))
}

func benchFiles(b *testing.B, glob string) [][]byte {
	files, _ := filepath.Glob(glob)
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

func benchEncode(b *testing.B, batch int) { benchEncodeSet(b, benchCorpus(b), batch) }

func benchEncodeSet(b *testing.B, st [][]byte, batch int) {
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

func benchDecode(b *testing.B, batch int) { benchDecodeSet(b, benchCorpus(b), batch) }

func benchDecodeSet(b *testing.B, st [][]byte, batch int) {
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

// BenchmarkEncodeB64Batch1 runs one encoder on (the set is small: a new
// encoder for each pass, with its dictionary, would weigh more than the set).
func BenchmarkEncodeB64Batch1(b *testing.B) {
	st := benchB64(b)
	e, _ := NewEncoder()
	b.SetBytes(rawSize(st))
	b.ReportAllocs()
	for b.Loop() {
		for i := range st {
			if _, err := e.Encode(st[i : i+1]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
func BenchmarkDecodeB64Batch1(b *testing.B) { benchDecodeSet(b, benchB64(b), 1) }

// benchHeldOut is set A's held-out generators (testdata/corpus/README):
// ejabberd and slixmpp traffic the dictionary was not trained on.
func benchHeldOut(b *testing.B) [][]byte {
	var all [][]byte
	for _, g := range []string{"ejabberd-slixmpp-*", "ejabberd-mellium-*", "prosody-slixmpp-*"} {
		all = append(all, benchFiles(b, filepath.Join("..", "testdata", "corpus", g+".xml.gz"))...)
	}
	return all
}

// benchEncrypted is the OMEMO-like messages of the held-out set.
func benchEncrypted(b *testing.B) [][]byte {
	var st [][]byte
	for _, s := range benchHeldOut(b) {
		if bytes.Contains(s, []byte("<encrypted")) {
			st = append(st, s)
		}
	}
	if len(st) == 0 {
		b.Skip("no encrypted messages in the corpus")
	}
	return st
}

func BenchmarkEncodeHeldOutBatch1(b *testing.B) { benchEncodeSet(b, benchHeldOut(b), 1) }
func BenchmarkDecodeHeldOutBatch1(b *testing.B) { benchDecodeSet(b, benchHeldOut(b), 1) }

// BenchmarkEncodeEncryptedBatch1 runs one encoder on, as
// BenchmarkEncodeB64Batch1 does.
func BenchmarkEncodeEncryptedBatch1(b *testing.B) {
	st := benchEncrypted(b)
	e, _ := NewEncoder()
	b.SetBytes(rawSize(st))
	b.ReportAllocs()
	for b.Loop() {
		for i := range st {
			if _, err := e.Encode(st[i : i+1]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodeEncryptedBatch1 leaves a new decoder's priming with the
// dictionary (it weighs more than the small set) out of the time: each
// pass decodes the first block untimed.
func BenchmarkDecodeEncryptedBatch1(b *testing.B) {
	st := benchEncrypted(b)
	e, _ := NewEncoder()
	var blocks [][]byte
	for i := range st {
		blk, err := e.Encode(st[i : i+1])
		if err != nil {
			b.Fatal(err)
		}
		blocks = append(blocks, bytes.Clone(blk))
	}
	b.SetBytes(rawSize(st[1:]))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		d, _ := NewDecoder()
		if _, err := d.Decode(blocks[0]); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, blk := range blocks[1:] {
			if _, err := d.Decode(blk); err != nil {
				b.Fatal(err)
			}
		}
		d.Close()
	}
}
