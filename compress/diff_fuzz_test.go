package compress

import (
	"bytes"
	"errors"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// FuzzEncodeDecode is the differential fuzzer of issue 10: whatever the
// gateway's S2S side accepts as a stanza (s2s.ParseStanza, the parse its
// stream reader applies to each top-level element, giving the element's
// exact bytes) either is refused by Encode with an *UnencodableError,
// before anything is written, or crosses: Decode accepts the block and
// gives back each stanza byte for byte, or in its canonical form (the same
// infoset, DecodedSize bytes long, and a fixed point: encoded again it
// decodes to itself). Encode never writes a block the decoder refuses.
// Two codec pairs run side by side: with the default bound and with a
// small WithMaxDecoded, which makes refusals (and splitting) common.
func FuzzEncodeDecode(f *testing.F) {
	for _, st := range issue10Cases(3000) {
		f.Add(st, []byte(`<message from='a@a.test/r' to='eve@shore.example' type='chat' id='x1'><body>hi</body></message>`))
	}
	f.Add([]byte(`<presence from='a@b/c' to='d@e'/>`), []byte(`<presence from='a@b/c' to='f@e'/>`))
	f.Add([]byte(`<iq type='get' id='p1' from='a.test' to='b.test'><ping xmlns='urn:xmpp:ping'/></iq>`), []byte(`<message to='x@y'><body a="'" b='&quot;'>&apos;'</body></message>`))
	f.Add([]byte(`<message to='x@y' xml:lang='en'><body>a&#xD;b</body></message>`), []byte("<message\tto='x@y'  ><body>\n</body ></message>"))
	seeds := b64Seeds()
	for i := range seeds {
		f.Add(seeds[i], seeds[(i+1)%len(seeds)])
	}
	type pair struct {
		enc *Encoder
		dec *Decoder
	}
	var pairs []pair
	for _, max := range []int{MaxBatchBytes, 2048, MaxBatchBytes} {
		// Without the dictionary: see FuzzRoundTrip.
		enc, err := NewEncoder(WithDict(nil), WithMaxDecoded(max))
		if err != nil {
			f.Fatal(err)
		}
		dec, err := NewDecoder(WithDict(nil), WithMaxDecoded(max))
		if err != nil {
			f.Fatal(err)
		}
		pairs = append(pairs, pair{enc, dec})
	}
	canon := pairs[2]
	pairs = pairs[:2]
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a)+len(b) > 24<<10 {
			return // TestIssue10CasesCross has the big ones
		}
		sa, errA := s2s.ParseStanza(a)
		sb, errB := s2s.ParseStanza(b)
		if errA != nil || errB != nil {
			return
		}
		a, b = sa.Raw, sb.Raw
		probe := []byte(`<message to='z@y.test' id='probe'><body>still in step</body></message>`)
		for _, p := range pairs {
			if err := p.enc.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := p.dec.Reset(); err != nil {
				t.Fatal(err)
			}
			for _, batch := range [][][]byte{{a}, {b, a}, {a, b, a}, {probe}} {
				blk, err := p.enc.Encode(batch)
				var ue *UnencodableError
				if errors.As(err, &ue) {
					if !errors.Is(err, ErrUnencodable) || ue.Index < 0 || ue.Index >= len(batch) {
						t.Fatalf("bad refusal: %v", err)
					}
					continue // nothing written: the next batch must still decode
				}
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				got, err := p.dec.Decode(bytes.Clone(blk))
				if err != nil {
					t.Fatalf("the decoder refuses what the encoder wrote: %v\nbatch %q", err, batch)
				}
				if len(got) != len(batch) {
					t.Fatalf("%d stanzas, want %d", len(got), len(batch))
				}
				for i := range batch {
					checkCanonical(t, canon, batch[i], got[i])
				}
			}
		}
	})
}

// checkCanonical asserts that got is in, or in's canonical form.
func checkCanonical(t *testing.T, p struct {
	enc *Encoder
	dec *Decoder
}, in, got []byte) {
	t.Helper()
	n, err := DecodedSize(in)
	if err != nil || n != len(got) {
		t.Fatalf("DecodedSize %d (%v), decoded %d bytes:\n got %q\nwant %q", n, err, len(got), got, in)
	}
	if bytes.Equal(got, in) {
		return
	}
	if !EqualInfoset(got, in) {
		t.Fatalf("infoset changed:\n got %q\nwant %q", got, in)
	}
	if err := p.enc.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := p.dec.Reset(); err != nil {
		t.Fatal(err)
	}
	blk, err := p.enc.Encode([][]byte{got})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.dec.Decode(bytes.Clone(blk))
	if err != nil || !bytes.Equal(again[0], got) {
		t.Fatalf("canonical form is not a fixed point (%v):\n got %q\nthen %q", err, got, again)
	}
}
