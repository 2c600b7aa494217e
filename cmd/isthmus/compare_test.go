package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/internal/demo"
)

func TestPrintCompare(t *testing.T) {
	r := demo.Result{
		Profile:        "vhf-9600",
		A2B:            gateway.Direction{StanzasTotal: 90, RawBytes: 40000, LinkBytes: 4000, WireBytes: 10000},
		B2A:            gateway.Direction{StanzasTotal: 80, RawBytes: 30000, LinkBytes: 3000, WireBytes: 6000},
		Offered:        [2]int{100, 90},
		OfferedHash:    [2]string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"},
		Frames:         [2]uint64{40, 20},
		HandshakeBytes: [2]uint64{0, 0},
	}
	air := r
	air.Air = [2]int64{20000, 6000} // the emulator's count, when there is one, is the wire
	air.HandshakeBytes = [2]uint64{1000, 1401}
	var ab strings.Builder
	printCompare(&ab, []compareRun{{"tcp", air, nil}})
	for _, want := range []string{
		"2.00x",         // raw÷wire a→b: 40000 / 20000 air bytes
		"4.00x",         // raw÷gateway's estimate a→b
		"400.0",         // (20000-4000)/40
		"2401 (0 conn)", // handshake bytes of both sides
	} {
		if !strings.Contains(ab.String(), want) {
			t.Errorf("compare table with air bytes lacks %q:\n%s", want, ab.String())
		}
	}
	var b strings.Builder
	printCompare(&b, []compareRun{{"tcp", r, nil}, {"quic", demo.Result{}, errors.New("boom")}})
	out := b.String()
	for _, want := range []string{
		"a→b 100, b→a 90 stanzas offered",
		"4.00x",  // raw÷wire a→b
		"150.0",  // (10000-4000)/40
		"150.0",  // (6000-3000)/20
		"failed", // quic's column
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare table lacks %q:\n%s", want, out)
		}
	}
	var j strings.Builder
	if err := printCompareJSON(&j, []compareRun{{"tcp", r, nil}, {"quic", demo.Result{}, errors.New("boom")}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"transport":"tcp"`, `"fixed_bytes_per_frame":150`, `"offered_stanzas":100`, `"error":"boom"`} {
		if !strings.Contains(j.String(), want) {
			t.Errorf("compare JSON lacks %s:\n%s", want, j.String())
		}
	}
}
