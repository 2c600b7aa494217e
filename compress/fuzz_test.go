package compress

import (
	"bytes"
	"fmt"
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
	seeds := b64Seeds()
	for i := range seeds {
		f.Add(seeds[i], seeds[(i+1)%len(seeds)])
	}
	// One encoder and decoder per worker, reset for each input, without the
	// dictionary: loading it (each Reset does) under the fuzzer's coverage
	// instrumentation took seconds per input, so the fuzzer stalled after
	// its seeds. The structural form, which this fuzzes, does not depend on
	// the dictionary; TestRoundTrip* cover the codec with it.
	enc, _ := NewEncoder(WithDict(nil))
	dec, _ := NewDecoder(WithDict(nil))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) == 0 || len(b) == 0 {
			return
		}
		if err := enc.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := dec.Reset(); err != nil {
			t.Fatal(err)
		}
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
	// Blocks whose later stanzas refer to the earlier ones: shapes, typed
	// holes, pairs, the last id, templates with a predicted recipient.
	for _, size := range []int{1, 6} {
		enc2, _ := NewEncoder(WithDict(nil))
		var batch [][]byte
		for i := range 6 {
			batch = append(batch,
				fmt.Appendf(nil, `<message from='a@a.test/r' to='b@b.test' id='%d5f0c6a4e-2b8d-4c1e-9a7f-3d2e1b0c9a8f'><x xmlns='urn:xmpp:sid:0' id='%[1]d5f0c6a4e-2b8d-4c1e-9a7f-3d2e1b0c9a8f'/></message>`, i%10),
				fmt.Appendf(nil, `<presence from='a@a.test/r' to='c%d@b.test'><show>away</show></presence>`, i%3))
		}
		for i := 0; i < len(batch); i += size {
			blk, _ := enc2.Encode(batch[i:min(i+size, len(batch))])
			f.Add(bytes.Clone(blk))
		}
	}
	// Two senders' presences fanned out, interleaved, to full JIDs (each
	// template predicts its next recipient, with the bare JID's last
	// resource), twice over: in batches of one and of eight (short zstd
	// modes, resource code 2).
	for _, size := range []int{1, 8} {
		enc3, _ := NewEncoder()
		var batch [][]byte
		for round := range 2 {
			for j := range 4 {
				for s := range 2 {
					batch = append(batch, fmt.Appendf(nil, `<presence from='s%d@a.test/r' to='u%d@b.test/res%d'><status>%d</status></presence>`, s, j, j, round))
				}
			}
		}
		for i := 0; i < len(batch); i += size {
			blk, _ := enc3.Encode(batch[i:min(i+size, len(batch))])
			f.Add(bytes.Clone(blk))
		}
	}
	// Echoed ids: the decoder resolves from a log of "sent" ids that the
	// seeds' encoder saw as received, in two generations.
	sent := NewIDLog()
	sent.Start(7)
	for i := range 40 {
		if i == 20 {
			sent.Start(8)
		}
		sent.add(fmt.Sprintf("%032x", i*2654435761))
	}
	for _, size := range []int{1, 4} {
		enc4, _ := NewEncoder()
		enc4.EchoIDs(sent)
		var batch [][]byte
		for i := range 8 {
			batch = append(batch, fmt.Appendf(nil, `<message from='a@a.test/r' to='b@b.test/r' id='r%d'><received xmlns='urn:xmpp:receipts' id='%032x'/></message>`, i, (20+i*3)*2654435761))
		}
		for i := 0; i < len(batch); i += size {
			blk, _ := enc4.Encode(batch[i:min(i+size, len(batch))])
			f.Add(bytes.Clone(blk))
		}
	}
	f.Add([]byte{modeOne | flagTemplate, 0, formJID, 1, 0})
	f.Add([]byte{modeOne | flagTemplate | flagNext, 0})
	f.Add([]byte{modeZstd1S | 1, 0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Add([]byte{modeZstdS, 1, 2})
	f.Add([]byte{modePlain, 2, 0, 4, 0, 0, 0, 4, 0, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		dec, _ := NewDecoder()
		defer dec.Close()
		dec.EchoIDs(sent)
		dec.LogIDs(NewIDLog())
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
