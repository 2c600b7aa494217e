package link

import (
	"errors"
	"fmt"
	"testing"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// A peer with the right key that ignores the decoded-size bound we
// announced in HELLO (issue 10, defect 5: a small block that decodes to far
// more) gets its DATA frame refused: Receive fails (the link drops the
// connection), the frame is counted as a protocol error, nothing of it is
// delivered, and h does not move, so nothing is acknowledged.
func TestDataBeyondAnnouncedBoundRefused(t *testing.T) {
	const bound = 4096
	b, err := NewSession(SessionConfig{MaxDecoded: bound}, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	b.Connected(t0)
	if _, err := b.Receive(t0, Frame{FrameHello, hello(0, 5, 0, 0, 1<<20).append(nil)}); err != nil {
		t.Fatal(err)
	}
	// The impostor's encoder, told nothing of the bound: 64 stanzas of 1 KB
	// of repeated text compress to a few hundred bytes and decode to 16×
	// the bound.
	enc, err := compress.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	var batch [][]byte
	for i := range 64 {
		batch = append(batch, fmt.Appendf(nil, "<message to='u@b.test' from='v@a.test' id='m%d'><body>%01000d</body></message>", i, 0))
	}
	block, err := enc.Encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(block) > bound/4 {
		t.Fatalf("block of %d bytes: not the small block this test needs", len(block))
	}
	payload := append(appendAck(nil, 0, b.Epoch()), block...)
	got, err := b.Receive(t0, Frame{FrameData, payload})
	if err == nil {
		t.Fatalf("a %d-byte block decoding to %d bytes (bound %d) was accepted: %d stanzas", len(block), 64*1070, bound, len(got))
	}
	if !errors.Is(err, compress.ErrCorrupt) && !errors.Is(err, ErrProtocol) {
		t.Errorf("refused with %v, want a corrupt-block or protocol error", err)
	}
	if len(got) != 0 {
		t.Errorf("%d stanzas delivered from the refused frame", len(got))
	}
	if b.ProtocolErrors != 1 {
		t.Errorf("ProtocolErrors = %d, want 1", b.ProtocolErrors)
	}
	if b.In.Stanzas != 0 {
		t.Errorf("In.Stanzas = %d, want 0 (nothing acknowledged)", b.In.Stanzas)
	}
	t.Logf("a %d-byte block decoding to about %d bytes against a bound of %d: %v", len(block), 64*1070, bound, err)
}
