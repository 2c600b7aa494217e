package link

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func counterIDs(start uint32) func() uint32 {
	n := start
	return func() uint32 { n++; return n }
}

func newPair(t *testing.T) (*Session, *Session) {
	t.Helper()
	a, err := NewSession(SessionConfig{}, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(SessionConfig{}, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// deliver feeds every frame in buf to s and returns the stanzas delivered.
func deliver(t *testing.T, now time.Time, s *Session, buf []byte) []string {
	t.Helper()
	got, err := feed(now, s, buf)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return got
}

// feed delivers every frame in buf to s, returning the stanzas and the
// first error.
func feed(now time.Time, s *Session, buf []byte) ([]string, error) {
	var got []string
	br := bufio.NewReader(bytes.NewReader(buf))
	for {
		f, err := ReadFrame(br)
		if err != nil {
			return got, nil
		}
		batch, err := s.Receive(now, f)
		if err != nil {
			return got, err
		}
		for _, st := range batch {
			got = append(got, string(st))
		}
	}
}

// exchange runs both sessions until neither has anything to send at now.
func exchange(t *testing.T, now time.Time, a, b *Session) (toB, toA []string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		fa, fb := a.Poll(now), b.Poll(now)
		if fa == nil && fb == nil {
			return
		}
		toB = append(toB, deliver(t, now, b, fa)...)
		toA = append(toA, deliver(t, now, a, fb)...)
	}
	t.Fatal("sessions never went quiet")
	return
}

func stanza(i int) []byte {
	return fmt.Appendf(nil, "<message to='u%d@b.test' from='v@a.test' id='m%d'><body>hello %d</body></message>", i%7, i, i)
}

func TestBatchWindowAndOrder(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b) // HELLOs
	for i := 0; i < 5; i++ {
		a.Enqueue(t0, uint64(i)+1, Item{Data: stanza(i)})
	}
	if got, _ := exchange(t, t0.Add(10*time.Millisecond), a, b); len(got) != 0 {
		t.Fatalf("batch closed before the window: %d stanzas", len(got))
	}
	if next := a.Next(); !next.Equal(t0.Add(50 * time.Millisecond)) {
		t.Fatalf("Next = %v, want batch window end", next.Sub(t0))
	}
	got, _ := exchange(t, t0.Add(50*time.Millisecond), a, b)
	if len(got) != 5 || got[0] != string(stanza(0)) || got[4] != string(stanza(4)) {
		t.Fatalf("got %q", got)
	}
	if a.Out.Frames != 2 { // HELLO + one DATA
		t.Errorf("a sent %d frames, want 2", a.Out.Frames)
	}
	// b owes an ack; it waits AckDelay for data to carry it.
	if f := b.Poll(t0.Add(60 * time.Millisecond)); f != nil {
		t.Fatalf("standalone ack sent early: %x", f)
	}
	exchange(t, t0.Add(2*time.Second), a, b)
	if _, unacked := a.Queued(); unacked != 0 {
		t.Fatalf("%d stanzas unacked after the ack delay", unacked)
	}
}

// Presence alone waits PresenceWindow for company; an iq or message closes
// the batch at BatchWindow and takes the queued presence along.
func TestPresenceWindow(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b) // HELLOs
	pres := func(i int) []byte {
		return fmt.Appendf(nil, "<presence from='u%d@a.test/r' to='v@b.test'><show>away</show></presence>", i)
	}
	// Presence trickles in 250ms apart: one frame for all four at 1s.
	for i := 0; i < 4; i++ {
		now := t0.Add(time.Duration(i) * 250 * time.Millisecond)
		a.Enqueue(now, uint64(i)+1, Item{Data: pres(i), Class: ClassPresence})
		if got, _ := exchange(t, now, a, b); len(got) != 0 {
			t.Fatalf("presence left after %v, before the presence window", now.Sub(t0))
		}
	}
	if next := a.Next(); !next.Equal(t0.Add(DefaultPresenceWindow)) {
		t.Fatalf("Next = %v, want the presence window end", next.Sub(t0))
	}
	if got, _ := exchange(t, t0.Add(DefaultPresenceWindow), a, b); len(got) != 4 {
		t.Fatalf("got %d presence at the window end, want 4", len(got))
	}
	if a.Out.Frames != 2 { // HELLO + one DATA
		t.Errorf("a sent %d frames, want 2", a.Out.Frames)
	}
	// A message closes the batch at BatchWindow, with the presence before it.
	now := t0.Add(10 * time.Second)
	a.Enqueue(now, 10, Item{Data: pres(9), Class: ClassPresence})
	a.Enqueue(now.Add(100*time.Millisecond), 11, Item{Data: stanza(1)})
	if next := a.Next(); !next.Equal(now.Add(150 * time.Millisecond)) {
		t.Fatalf("Next = %v, want 150ms (message's batch window)", next.Sub(now))
	}
	got, _ := exchange(t, now.Add(150*time.Millisecond), a, b)
	if len(got) != 2 || got[0] != string(stanza(1)) || got[1] != string(pres(9)) {
		t.Fatalf("got %q, want the message then the presence", got)
	}
	if a.Out.Frames != 3 {
		t.Errorf("a sent %d frames, want 3", a.Out.Frames)
	}
}

func TestResumeRetransmitsSameBytes(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	now := t0
	var delivered []string
	for i := 0; i < 3; i++ {
		a.Enqueue(now, uint64(i)+1, Item{Data: stanza(i)})
		now = now.Add(time.Second)
		got, _ := exchange(t, now, a, b)
		delivered = append(delivered, got...)
	}
	// Two more frames are sent but lost with the connection.
	var lost [][]byte
	for i := 3; i < 5; i++ {
		a.Enqueue(now, uint64(i)+1, Item{Data: stanza(i)})
		now = now.Add(time.Second)
		lost = append(lost, a.Poll(now))
	}
	a.Disconnected()
	b.Disconnected()
	epoch := a.Epoch()
	a.Connected(now)
	b.Connected(now)
	// Capture what a sends after the HELLO exchange.
	hb := b.Poll(now)
	ha := a.Poll(now)
	deliver(t, now, b, ha)
	deliver(t, now, a, hb)
	var re []byte
	for f := a.Poll(now); f != nil; f = a.Poll(now) {
		re = append(re, f...)
		delivered = append(delivered, deliver(t, now, b, f)...)
	}
	if a.Epoch() != epoch || a.Resumes != 1 {
		t.Fatalf("epoch %d→%d, resumes %d: want a resumption", epoch, a.Epoch(), a.Resumes)
	}
	// The retransmitted blocks are the lost ones, byte for byte (the ack
	// prefix may differ).
	for _, l := range lost {
		f, _ := ReadFrame(bufio.NewReader(bytes.NewReader(l)))
		_, block, _ := parseCounter(f.Payload, "")
		if !bytes.Contains(re, block) {
			t.Fatal("a lost block was not retransmitted byte for byte")
		}
	}
	if len(delivered) != 5 {
		t.Fatalf("delivered %d, want 5: %q", len(delivered), delivered)
	}
	for i, d := range delivered {
		if d != string(stanza(i)) {
			t.Fatalf("stanza %d = %q", i, d)
		}
	}
}

func TestPeerLostStateStartsNewEpoch(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	now := t0.Add(time.Second)
	for i := 0; i < 4; i++ {
		a.Enqueue(now, uint64(i)+1, Item{Data: stanza(i)})
	}
	now = now.Add(time.Second)
	got, _ := exchange(t, now, a, b) // delivered, but not yet acked
	if len(got) != 4 {
		t.Fatalf("got %d", len(got))
	}
	a.Enqueue(now, uint64(4)+1, Item{Data: stanza(4)})
	a.Poll(now.Add(time.Second)) // sent and lost
	a.Disconnected()
	// b restarts with no state.
	_, b2 := newPair(t)
	b2.newID = counterIDs(300)
	old := a.Epoch()
	a.Connected(now)
	b2.Connected(now)
	got, _ = exchange(t, now.Add(2*time.Second), a, b2)
	if a.Epoch() == old || a.EpochChanges != 1 {
		t.Fatalf("no new epoch after the peer lost state")
	}
	// Without a spool, what b delivered before its restart is re-sent:
	// b2 receives all five, in order, decodable in the new epoch.
	if len(got) != 5 || got[4] != string(stanza(4)) {
		t.Fatalf("after new epoch got %q", got)
	}
}

func TestKeepaliveAndDead(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	if a.epoch < a.peerEpoch {
		a, b = b, a // a: the side that asks after Keepalive (askDue)
	}
	ka := DefaultKeepalive
	now := t0.Add(ka - time.Second)
	if f := a.Poll(now); f != nil {
		t.Fatal("keepalive before Keepalive")
	}
	now = t0.Add(ka)
	f := a.Poll(now)
	if len(f) != 2 || f[0] != FrameAckReq {
		t.Fatalf("want ACKREQ, got %x", f)
	}
	deliver(t, now, b, f)
	if r := b.Poll(now); len(r) == 0 || r[0] != FrameAck {
		t.Fatalf("ACKREQ not answered at once: %x", r)
	}
	dead := 2*ka + time.Minute // a heard nothing since the HELLOs
	if !a.Dead(t0.Add(dead-time.Second)) && a.Dead(t0.Add(dead)) {
		return
	}
	t.Fatal("Dead should turn true at DeadAfter without traffic")
}

func TestProtocolErrors(t *testing.T) {
	cases := map[string]Frame{
		"data before hello": {FrameData, []byte{0}},
		"unknown type":      {0x7f, nil},
		"bad hello version": {FrameHello, []byte{9, 0, 1, 0, 0}},
	}
	for name, f := range cases {
		a, _ := newPair(t)
		a.Connected(t0)
		if name == "unknown type" {
			a.Receive(t0, Frame{FrameHello, hello(0, 5, 0, 0, 1<<20).append(nil)})
		}
		if _, err := a.Receive(t0, f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a, _ := newPair(t)
	a.Connected(t0)
	a.Receive(t0, Frame{FrameHello, hello(0, 5, 0, 0, 1<<20).append(nil)})
	if _, err := a.Receive(t0, Frame{FrameAck, appendAck(nil, 3, a.Epoch())}); err == nil {
		t.Error("ack beyond what was sent accepted")
	}
}

// One stanza the codec cannot carry costs that stanza (counted, handed
// back with the reason), not its batch, and never the link (issue 10).
func TestUnencodableStanzaAlone(t *testing.T) {
	cfg := SessionConfig{MaxDecoded: 1024}
	a, err := NewSession(cfg, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cfg, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	// 560 bytes, 2060 decoded: the peer's decoder would refuse it.
	big := []byte("<message to='u@b.test' from='v@a.test' id='big'><body>" + strings.Repeat(">", 500) + "</body></message>")
	items := [][]byte{stanza(1), big, stanza(2), stanza(3), stanza(4), stanza(5), stanza(6)}
	for i, d := range items {
		if err := a.Enqueue(t0, uint64(i)+1, Item{Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	want := []string{string(stanza(1)), string(stanza(2)), string(stanza(3)), string(stanza(4)), string(stanza(5)), string(stanza(6))}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d stanzas: %q", len(got), got)
	}
	if a.Drops.Unencodable != 1 {
		t.Fatalf("Drops.Unencodable = %d, want 1", a.Drops.Unencodable)
	}
	rej := a.TakeRejected()
	if len(rej) != 1 || !bytes.Equal(rej[0].Data, big) || !errors.Is(rej[0].Err, compress.ErrUnencodable) {
		t.Fatalf("rejected: %v", rej)
	}
	exchange(t, t0.Add(3*time.Second), a, b) // acks
	if a.HeldBytes() != 0 {
		t.Fatalf("%d bytes still held", a.HeldBytes())
	}
	var dropped []uint64
	for _, op := range a.TakeOps() {
		if op.Kind == OpDrop {
			dropped = append(dropped, op.IDs...)
		}
	}
	if !slices.Equal(dropped, []uint64{2}) {
		t.Fatalf("dropped ids %v, want [2]", dropped)
	}
	// One that is too big as it is is refused at once: the gateway bounces
	// it at ingress.
	err = a.Enqueue(t0, 99, Item{Data: []byte("<message to='u@b.test'><body>" + strings.Repeat("x", 1100) + "</body></message>")})
	if !errors.Is(err, compress.ErrUnencodable) || a.Drops.Unencodable != 2 {
		t.Fatalf("Enqueue of a stanza over the peer's bound: %v (%d counted)", err, a.Drops.Unencodable)
	}
}

// HELLO carries the codec version and the decoder's bound: a peer with
// another codec is refused at the handshake.
func TestHelloCodecVersion(t *testing.T) {
	h, err := ParseHello(hello(0, 5, 0, 0, 300000).append(nil))
	if err != nil || h.Codec != compress.Version || h.MaxDecoded != 300000 {
		t.Fatalf("%+v, %v", h, err)
	}
	other := hello(0, 5, 0, 0, 300000)
	other.Codec++
	if _, err := ParseHello(other.append(nil)); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "codec version") {
		t.Fatalf("another codec version: %v", err)
	}
	if _, err := ParseHello(hello(0, 5, 0, 0, 10).append(nil)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("maxDecoded 10: %v", err)
	}
}

// A batch bigger than the peer's decoder takes is split, not dropped.
func TestBatchSplitForPeerDecoder(t *testing.T) {
	a, err := NewSession(SessionConfig{}, counterIDs(100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(SessionConfig{MaxDecoded: 1024}, counterIDs(200))
	if err != nil {
		t.Fatal(err)
	}
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	var want []string
	for i := range 40 {
		st := stanza(i)
		want = append(want, string(st))
		if err := a.Enqueue(t0, uint64(i)+1, Item{Data: st}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := exchange(t, t0.Add(time.Second), a, b)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d of %d stanzas, in order: %v", len(got), len(want), slices.Equal(got, want[:len(got)]))
	}
	if a.Drops.Unencodable != 0 || a.Out.Frames < 4 {
		t.Fatalf("%d unencodable, %d frames", a.Drops.Unencodable, a.Out.Frames)
	}
}

// TestDropsAll: Drops.All yields every field of Drops once, in order, with
// its value, so the metrics built from it miss no drop counter.
func TestDropsAll(t *testing.T) {
	var d Drops
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	names := map[string]bool{}
	i := 0
	for name, n := range d.All() {
		i++
		if n != uint64(i) {
			t.Errorf("All yields %s = %d in place %d, want field %s", name, n, i, v.Type().Field(i-1).Name)
		}
		if names[name] {
			t.Errorf("All yields %s twice", name)
		}
		names[name] = true
	}
	if i != v.NumField() {
		t.Errorf("All yields %d counters, Drops has %d fields", i, v.NumField())
	}
}

// An idle link carries one ACKREQ/ACK exchange per Keepalive, not one from
// each side: the side that answered lets the other keep asking.
func TestKeepaliveOneExchangePerPeriod(t *testing.T) {
	a, b := newPair(t)
	a.Connected(t0)
	b.Connected(t0)
	exchange(t, t0, a, b)
	asks := map[string]int{}
	count := func(name string, buf []byte) {
		br := bufio.NewReader(bytes.NewReader(buf))
		for {
			f, err := ReadFrame(br)
			if err != nil {
				return
			}
			if f.Type == FrameAckReq {
				asks[name]++
			}
		}
	}
	// Each answer comes a Poll (a second) later: the hour's fourth
	// question is a few seconds past the hour.
	for now := t0; now.Before(t0.Add(time.Hour + time.Minute)); now = now.Add(time.Second) {
		fa, fb := a.Poll(now), b.Poll(now)
		count("a", fa)
		count("b", fb)
		deliver(t, now, b, fa)
		deliver(t, now, a, fb)
	}
	if got, want := asks["a"]+asks["b"], int(time.Hour/DefaultKeepalive); got != want {
		t.Errorf("ACKREQs in an idle hour: %v, want %d in all", asks, want)
	}
	if a.Dead(t0.Add(time.Hour)) || b.Dead(t0.Add(time.Hour)) {
		t.Error("a session counts as dead on a link that answered every keepalive")
	}
}
