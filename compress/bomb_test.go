package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// bombBlock returns a block of mode 1 that declares decoded bytes of XML
// and carries, in the epoch's zstd stream (no dictionary), n raw stanzas
// of size bytes each, declared as structural bytes long.
func bombBlock(t *testing.T, declared, structural uint64, n, size int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteByte(modeZstd)
	out.Write(binary.AppendUvarint(nil, uint64(sizeUnits(int(declared)))))
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(WindowSize), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
	if err != nil {
		t.Fatal(err)
	}
	hdr := binary.AppendUvarint(nil, uint64(n))
	hdr = binary.AppendUvarint(hdr, structural)
	zw.Write(hdr)
	st := append([]byte{flagRaw}, binary.AppendUvarint(nil, uint64(size))...)
	st = append(st, bytes.Repeat([]byte{'a'}, size)...)
	for range n {
		zw.Write(st)
	}
	zw.Flush()
	return out.Bytes()
}

// A block that decodes to 64 MB from 7 KB (issue 10, defect 5) is refused
// before its payload is decoded, whatever it declares, with allocation
// bounded by the decoder's configured bound, not by the block.
func TestDecompressionBomb(t *testing.T) {
	const stanzas, size = 4096, 16 << 10 // 64 MiB of raw stanzas
	full := uint64(stanzas * (size + 3))
	const bound = 256 << 10 // a link's max_batch_bytes and max_stanza_size
	for _, c := range []struct {
		name                 string
		declared, structural uint64
	}{
		{"honest", stanzas * size, full},        // declares 64 MiB: over the bound
		{"lies about its size", 16 << 10, full}, // declares 16 KiB, 64 MiB of payload
		{"lies about both", 16 << 10, 32 << 10}, // the payload is longer than it says
		{"within the bound", bound, 2 * bound},  // stanzas bigger than declared
	} {
		t.Run(c.name, func(t *testing.T) {
			block := bombBlock(t, c.declared, c.structural, stanzas, size)
			dec, err := NewDecoder(WithDict(nil), WithMaxDecoded(bound))
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = dec.Decode(block)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a %d-byte block decoding to %d MiB: %v", len(block), stanzas*size>>20, err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte block: %v; %d KiB allocated", len(block), err, alloc>>10)
			// The bound's few times (payload, output), the zstd window
			// and its buffers: far below the 64 MiB the block expands to.
			if alloc > 4*bound+2*WindowSize {
				t.Fatalf("decoding allocated %d KiB, bound %d KiB", alloc>>10, bound>>10)
			}
		})
	}
}

// The encoder writes the decoded size the decoder holds it to.
func TestDeclaredSize(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder(WithMaxDecoded(4096))
	batch := [][]byte{
		[]byte(`<message to='a@b' from='c@d' type='chat' id='m1'><body>` + string(bytes.Repeat([]byte("hello "), 300)) + `</body></message>`),
		[]byte(`<message to='a@b' from='c@d' type='chat' id='m2'><body a="'">x &amp; y &gt; z</body></message>`),
	}
	blk, err := enc.Encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	if blk[0]&^0x1f != modeZstdS {
		t.Fatalf("mode %#x, want the short form of mode 1", blk[0])
	}
	units := uint64(blk[0] &^ modeZstdS)
	size := int(units) * sizeUnit
	got, err := dec.Decode(bytes.Clone(blk))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got[0]) + len(got[1]); n > size || n <= size-sizeUnit {
		t.Fatalf("declared %d×%d, decoded %d", units, sizeUnit, n)
	}
	// The same batch to a decoder bound below it: refused by the encoder
	// given that bound, never written.
	enc2, _ := NewEncoder(WithMaxDecoded(len(got[0]) + len(got[1]) - 1))
	if _, err := enc2.Encode(batch); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("encoding over the peer's bound: %v", err)
	}
}
