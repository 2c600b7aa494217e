package compress

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoundTripCorpus encodes and decodes every stanza of every capture in
// testdata/corpus (every generator: internal/sim, Prosody and ejabberd
// driven by mellium and slixmpp clients; see its README), one epoch per
// file, in batches of 1 to 16 stanzas. Each decoded stanza must carry its
// input's infoset; stanzas written by Prosody and ejabberd must come back
// byte for byte (doc.go: "The bytes are identical for stanzas written the
// way Prosody, ejabberd and isthmus's simulator write them").
func TestRoundTripCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no captures in testdata/corpus")
	}
	total := 0
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".xml.gz"), func(t *testing.T) {
			st, err := ReadCapture(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) == 0 {
				t.Fatalf("%s: no stanzas", name)
			}
			server := strings.HasPrefix(name, "prosody-") || strings.HasPrefix(name, "ejabberd-")
			enc, err := NewEncoder()
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			canon, fails := 0, 0
			for i, size := 0, 1; i < len(st); i, size = i+size, size%16+1 {
				in := st[i:min(i+size, len(st))]
				block, err := enc.Encode(in)
				if err != nil {
					t.Fatalf("%s: encoding stanzas %d..%d: %v", name, i, i+len(in)-1, err)
				}
				out, err := dec.Decode(bytes.Clone(block))
				if err != nil {
					t.Fatalf("%s: decoding stanzas %d..%d: %v", name, i, i+len(in)-1, err)
				}
				if len(out) != len(in) {
					t.Fatalf("%s: stanzas %d..%d: %d decoded, want %d", name, i, i+len(in)-1, len(out), len(in))
				}
				for j := range in {
					switch {
					case bytes.Equal(out[j], in[j]):
						continue
					case !EqualInfoset(out[j], in[j]):
						t.Errorf("%s: stanza %d decoded to another infoset:\n in: %s\nout: %s", name, i+j, in[j], out[j])
					case server:
						t.Errorf("%s: stanza %d written by a real server came back canonicalized, not byte for byte:\n in: %s\nout: %s", name, i+j, in[j], out[j])
					default:
						canon++
						continue
					}
					if fails++; fails >= 5 {
						t.Fatalf("%s: giving up after %d bad stanzas", name, fails)
					}
				}
			}
			total += len(st)
			t.Logf("%s: %d stanzas round-tripped (%d canonicalized)", name, len(st), canon)
		})
	}
	t.Logf("%d stanzas from %d captures", total, len(files))
}
