package compress

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"
)

func sampleStanza(r *rand.Rand, i int) []byte {
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	switch i % 3 {
	case 0:
		return fmt.Appendf(nil, `<message from='%s@a.test/Conversations.Xy1' to='%s@b.test' type='chat' id='%08x-%04x'><body>message number %d says hello</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`,
			users[r.Intn(5)], users[r.Intn(5)], r.Uint32(), r.Intn(65536), i)
	case 1:
		return fmt.Appendf(nil, `<presence from='%s@a.test/gajim.8KQ2' to='%s@b.test'><show>away</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='T7fOZrtBnV8sDA2fFTS59vBT6LY='/></presence>`,
			users[r.Intn(5)], users[r.Intn(5)])
	default:
		return fmt.Appendf(nil, `<iq from='a.test' to='b.test' type='get' id='ping-%d'><ping xmlns='urn:xmpp:ping'/></iq>`, i)
	}
}

func TestRoundTripAcrossBlocks(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	raw, coded := 0, 0
	for b := 0; b < 200; b++ {
		var batch [][]byte
		for i := 0; i < 1+r.Intn(5); i++ {
			st := sampleStanza(r, b*7+i)
			raw += len(st)
			batch = append(batch, st)
		}
		block, err := enc.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		coded += len(block)
		got, err := dec.Decode(bytes.Clone(block))
		if err != nil {
			t.Fatalf("block %d: %v", b, err)
		}
		if len(got) != len(batch) {
			t.Fatalf("block %d: %d stanzas, want %d", b, len(got), len(batch))
		}
		for i := range got {
			if !bytes.Equal(got[i], batch[i]) {
				t.Fatalf("block %d stanza %d: got %q want %q", b, i, got[i], batch[i])
			}
		}
	}
	ratio := float64(raw) / float64(coded)
	t.Logf("raw %d B, coded %d B, ratio %.2f", raw, coded, ratio)
	if ratio < 3 {
		t.Errorf("streaming context should compress repetitive stanzas at least 3x, got %.2f", ratio)
	}
}

func TestLargeBatchSpansZstdBlocks(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	r := rand.New(rand.NewSource(2))
	big := make([]byte, 300<<10) // bigger than one zstd block (128 KiB)
	r.Read(big)
	for round := 0; round < 3; round++ {
		block, err := enc.Encode([][]byte{big, []byte("<iq/>")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(bytes.Clone(block))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[0], big) || string(got[1]) != "<iq/>" {
			t.Fatal("large batch did not round-trip")
		}
	}
}

func TestResetStartsNewEpoch(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder()
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 5; i++ {
		b, _ := enc.Encode([][]byte{sampleStanza(r, i)})
		if _, err := dec.Decode(bytes.Clone(b)); err != nil {
			t.Fatal(err)
		}
	}
	// The peer restarted: a fresh decoder cannot read the old stream...
	fresh, _ := NewDecoder()
	b, _ := enc.Encode([][]byte{sampleStanza(r, 9)})
	if _, err := fresh.Decode(bytes.Clone(b)); err == nil {
		t.Fatal("a fresh decoder decoded a mid-stream block")
	}
	// ...until both ends reset.
	enc.Reset()
	fresh.Reset()
	want := sampleStanza(r, 10)
	b, _ = enc.Encode([][]byte{want})
	got, err := fresh.Decode(bytes.Clone(b))
	if err != nil || !bytes.Equal(got[0], want) {
		t.Fatalf("after reset: %v %q", err, got)
	}
}

func TestCorruptBlocksFailCleanly(t *testing.T) {
	enc, _ := NewEncoder()
	r := rand.New(rand.NewSource(4))
	good, _ := enc.Encode([][]byte{sampleStanza(r, 0), sampleStanza(r, 1)})
	cases := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)/2],
		"trailing":  append(bytes.Clone(good), 1, 2, 3),
		"garbage":   []byte("not zstd at all"),
	}
	for name, b := range cases {
		dec, _ := NewDecoder()
		_, err := dec.Decode(b)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if name != "garbage" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
		if _, err2 := dec.Decode(good); err2 == nil {
			t.Errorf("%s: decoder recovered without Reset", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	enc, _ := NewEncoder()
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 3; i++ {
		b, _ := enc.Encode([][]byte{sampleStanza(r, i)})
		f.Add(bytes.Clone(b))
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		dec, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		batch, err := dec.Decode(block)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same batch.
		e, _ := NewEncoder()
		d2, _ := NewDecoder()
		b2, err := e.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		again, err := d2.Decode(b2)
		if err != nil || len(again) != len(batch) {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range batch {
			if !bytes.Equal(again[i], batch[i]) {
				t.Fatal("round trip changed a stanza")
			}
		}
	})
}
