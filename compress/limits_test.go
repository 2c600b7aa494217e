package compress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// issue10Cases are stanzas at or past the structural limits (issue 10,
// defect 1): each crosses, structurally or raw, and decodes to the same
// infoset. huge is the size of the huge values (the fuzzer's seeds stay
// small: it minimizes each new input, for up to a minute when it is big).
func issue10Cases(huge int) [][]byte {
	long := func(n int) string { return strings.Repeat("X", n) }
	deep := strings.Repeat("<a>", maxDepth+2) + strings.Repeat("</a>", maxDepth+2)
	var attrs strings.Builder
	for i := range 200 {
		attrs.WriteString(" a" + strings.Repeat("b", i%40) + string(rune('a'+i%26)) + strings.Repeat("c", i/26) + "='v'")
	}
	return [][]byte{
		[]byte(`<message to='eve@shore.example' type='chat'><body>x</body><` + long(300) + ` xmlns='urn:t'/></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><body>x</body><` + long(256) + ` xmlns='urn:t'/></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><body>x</body><` + long(257) + ` xmlns='urn:t'/></message>`),
		[]byte(`<message to='eve@shore.example' ` + long(300) + `='1' type='chat'><body>x</body></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><x xmlns='urn:` + long(huge/2) + `'/></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'>` + deep + `</message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><x` + attrs.String() + `/></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><body>` + strings.Repeat("'&quot;>", huge/8) + `</body></message>`),
		[]byte(`<message to='eve@shore.example' id='` + long(huge) + `' type='chat'><body>x</body></message>`),
		[]byte(`<message to='` + long(300) + `@shore.example/` + long(300) + `' type='chat'><body>x</body></message>`),
		[]byte(`<message to='eve@shore.example' type='chat'><bödy>ü</bödy><ÿ xmlns='urn:ü'/></message>`),
		[]byte(`<presence to='eve@shore.example' from='` + long(250) + `@a/` + long(250) + `'><x a='` + strings.Repeat(`>"`, 300) + `'/></presence>`),
		[]byte(`<presence to='eve@shore.example' from='a@b/c'><status>` + strings.Repeat(">", 1500) + `</status></presence>`),
		[]byte(`<presence to='eve@shore.example' from='a@b/c'><status>` + strings.Repeat("&lt;&apos;", 1000) + `</status></presence>`),
	}
}

func TestIssue10CasesCross(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	cases := issue10Cases(150000)
	for i, st := range cases {
		for _, batch := range [][][]byte{{st}, {st, cases[0], st}} {
			blk, err := enc.Encode(batch)
			if err != nil {
				t.Fatalf("case %d: encode: %v", i, err)
			}
			got, err := dec.Decode(bytes.Clone(blk))
			if err != nil {
				t.Fatalf("case %d: decode: %v", i, err)
			}
			for j := range batch {
				if !bytes.Equal(got[j], batch[j]) && !EqualInfoset(got[j], batch[j]) {
					t.Fatalf("case %d: changed:\n got %.200q\nwant %.200q", i, got[j], batch[j])
				}
				if n, _ := DecodedSize(batch[j]); n != len(got[j]) {
					t.Fatalf("case %d: DecodedSize %d, decoded %d bytes", i, n, len(got[j]))
				}
			}
		}
	}
}

func TestEncodeRefusesBeforeWriting(t *testing.T) {
	enc, _ := NewEncoder(WithMaxDecoded(1000))
	dec, _ := NewDecoder(WithMaxDecoded(1000))
	ok := []byte(`<message to='a@b' from='c@d' type='chat' id='k1'><body>hello</body></message>`)
	big := []byte(`<message to='a@b' from='c@d' type='chat'><body>` + strings.Repeat("y", 2000) + `</body></message>`)
	// Encoded once, so that the tables hold it: a refused batch must not
	// advance them, or the next block would not decode.
	for _, batch := range [][][]byte{{ok}, {ok, big}, {big}, {ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok}, {ok}} {
		blk, err := enc.Encode(batch)
		var ue *UnencodableError
		if errors.As(err, &ue) {
			if !errors.Is(err, ErrUnencodable) || ue.Max != 1000 {
				t.Fatalf("error %v", err)
			}
			t.Logf("refused: %v (batch: %v)", err, ue.Batch())
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(blk))
		if err != nil {
			t.Fatalf("decode after a refused batch: %v", err)
		}
		if len(got) != len(batch) {
			t.Fatalf("%d stanzas", len(got))
		}
	}
	if err := Check(make([]byte, MaxStanzaSize+1)); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("Check of an oversized stanza: %v", err)
	}
	if _, err := enc.Encode([][]byte{ok, make([]byte, MaxStanzaSize+1)}); err == nil || err.(*UnencodableError).Index != 1 || err.(*UnencodableError).Limit != LimitStanzaSize {
		t.Fatalf("oversized stanza: %v", err)
	}
}
