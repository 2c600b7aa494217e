package spool

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/isthmus-xmpp/isthmus/link/item"
)

// FuzzReplay opens spool files made of fuzzed records and checks what a
// gateway restarting from a damaged or hostile state directory relies on:
// Open never panics, refuses only with ErrCorrupt, and a journal it accepted
// replays to the same state again after Close (nothing lost, nothing
// invented), and still takes new items.
//
// The input is a list of records (kind byte, then the body up to the next
// 0xff 0xfe separator); each is framed with a correct length and CRC so
// that the fuzzer reaches the record decoder (apply) instead of stopping at
// the checksum. A first byte of 0 writes the input as the whole file, raw,
// to exercise the header, length and CRC checks too.
func FuzzReplay(f *testing.F) {
	// Seeds: a real journal (items, a frame, an ack, a drop), then edits.
	dir := f.TempDir()
	sp, err := Open(dir, SyncNone)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		sp.Add(item.Item{Data: []byte(msg(i)), Class: item.Class(i % 2), Coalesce: "k"})
	}
	sp.Apply([]item.Op{{Kind: item.OpFrame, Epoch: 7, N: 1, IDs: []uint64{1, 2}}})
	sp.Apply([]item.Op{{Kind: item.OpAck, Epoch: 7, N: 1}})
	sp.Close()
	real, err := os.ReadFile(filepath.Join(dir, fileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte{0}, real...))
	f.Add(append([]byte{0}, real[:len(real)-5]...))
	f.Add([]byte{0, 'I', 'S', 'T', 'H', 'S', 'P', 'L', '2'})
	f.Add([]byte{1, 1, 0xff, 0xfe, 2, 7, 1, 1, 2})
	f.Add([]byte{1, 3, 7, 0xff, 0xff, 0xff, 0xff, 0x0f})

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		var file []byte
		if in[0] == 0 {
			file = in[1:]
		} else {
			file = []byte(header)
			for _, rec := range splitRecords(in[1:]) {
				if len(rec) > 0 {
					file = appendRecord(file, rec[0], rec[1:])
				}
			}
		}
		dir := t.TempDir()
		path := filepath.Join(dir, fileName)
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, err := Open(dir, SyncNone)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open refused with %v, want an ErrCorrupt error", err)
			}
			return
		}
		n, live := sp.Len()
		restored := sp.Restored()
		next := sp.NextID()
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		// What Open kept (it truncates a torn tail) replays to the same state.
		sp, err = Open(dir, SyncNone)
		if err != nil {
			t.Fatalf("a journal Open accepted is refused on reopening: %v", err)
		}
		if n2, live2 := sp.Len(); n2 != n || live2 != live {
			t.Fatalf("reopened: %d items/%d bytes, first open %d/%d", n2, live2, n, live)
		}
		if got := sp.Restored(); !reflect.DeepEqual(got, restored) {
			t.Fatalf("reopened: restored state differs:\n%+v\nfirst open:\n%+v", got, restored)
		}
		id, err := sp.Add(item.Item{Data: []byte("after")})
		if err != nil {
			t.Fatalf("Add after replay: %v", err)
		}
		if id != next {
			t.Fatalf("Add got id %d, NextID said %d", id, next)
		}
		sp.Close()
		sp, err = Open(dir, SyncNone)
		if err != nil {
			t.Fatalf("reopening after Add: %v", err)
		}
		if n3, _ := sp.Len(); n3 != n+1 {
			t.Fatalf("%d items after Add and reopen, want %d", n3, n+1)
		}
		sp.Close()
	})
}

// splitRecords splits b at each 0xff 0xfe.
func splitRecords(b []byte) [][]byte {
	var out [][]byte
	for {
		i := indexPair(b)
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+2:]
	}
}

func indexPair(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == 0xff && b[i+1] == 0xfe {
			return i
		}
	}
	return -1
}
