package compress

import (
	"bytes"
	"compress/zlib"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
)

// simTraffic returns one direction of a deterministic simulated run.
func simTraffic(seed int64, dur time.Duration, dir int) [][]byte {
	sc := sim.DefaultScenario()
	sc.Seed = seed
	var out [][]byte
	sim.Generate(sc, time.Unix(1700000000, 0), dur, 50*time.Millisecond, func(d int, _ time.Time, raw []byte) {
		if d == dir {
			out = append(out, bytes.Clone(raw))
		}
	})
	return out
}

func TestRoundTripSimTraffic(t *testing.T) {
	stanzas := simTraffic(7, 5*time.Minute, sim.A2B)
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, 6)
	raw := map[string]int{}
	coded := map[string]int{}
	zl := map[string]int{}
	n := map[string]int{}
	for i, st := range stanzas {
		block, err := enc.Encode([][]byte{st})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(block))
		if err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
		if !bytes.Equal(got[0], st) {
			t.Fatalf("stanza %d:\n got %s\nwant %s", i, got[0], st)
		}
		if _, err := s2s.ParseStanza(got[0]); err != nil {
			t.Fatalf("stanza %d: ParseStanza: %v", i, err)
		}
		before := zb.Len()
		zw.Write(st)
		zw.Flush()
		k := Kind(st)
		raw[k] += len(st)
		coded[k] += len(block)
		zl[k] += zb.Len() - before
		n[k]++
	}
	for k := range n {
		t.Logf("%-8s %5d stanzas raw %6.1f zlib %5.1f isthmus %5.1f B/stanza", k, n[k],
			float64(raw[k])/float64(n[k]), float64(zl[k])/float64(n[k]), float64(coded[k])/float64(n[k]))
	}
}
