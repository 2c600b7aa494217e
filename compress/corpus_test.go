package compress

import (
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/sim"
)

var writeCorpus = flag.Bool("write-corpus", false, "regenerate testdata/corpus/sim-*.xml.gz from internal/sim")

// streamHeader is what a server sends first on an S2S stream (Prosody's).
func streamHeader(from, to string) string {
	return fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xmlns='jabber:server' from='%s' to='%s'>", from, to)
}

func writeGz(t *testing.T, path string, parts ...[]byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zw.ModTime = time.Time{}
	for _, p := range parts {
		zw.Write(p)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestWriteSimCorpus writes the synthetic part of the corpus: one capture
// per direction per seed, 20 simulated minutes each. Seeds 1-3 train the
// dictionary; seed 9 is held out for the bench.
func TestWriteSimCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("run with -write-corpus")
	}
	dir := filepath.Join("..", "testdata", "corpus")
	os.MkdirAll(dir, 0o755)
	for _, seed := range []int64{1, 2, 3, 9} {
		for dir2, name := range []string{"a2b", "b2a"} {
			st := simTraffic(seed, 20*time.Minute, dir2)
			from, to := "a.test", "b.test"
			if dir2 == sim.B2A {
				from, to = to, from
			}
			parts := [][]byte{[]byte(streamHeader(from, to))}
			parts = append(parts, st...)
			writeGz(t, filepath.Join(dir, fmt.Sprintf("sim-seed%d-%s.xml.gz", seed, name)), parts...)
		}
	}
}
