package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// benchCapture writes a capture of presences and messages carrying random
// base64 (an OMEMO-like payload), interleaved, and returns its path.
func benchCapture(t *testing.T) string {
	r := rand.New(rand.NewSource(1))
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' from='a.test' to='b.test' version='1.0'>")
	for i := 0; i < 64; i++ {
		fmt.Fprintf(&b, "<presence from='u%d@a.test/r' to='v%d@b.test'><show>away</show></presence>", i%5, i%7)
		p := make([]byte, 300)
		r.Read(p)
		fmt.Fprintf(&b, "<message from='u%d@a.test/r' to='v%d@b.test' type='chat' id='m%d'><payload>%s</payload></message>", i%5, i%7, i, base64.StdEncoding.EncodeToString(p))
	}
	b.WriteString("</stream:stream>")
	path := filepath.Join(t.TempDir(), "c.xml.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(b.Bytes())
	zw.Close()
	f.Close()
	return path
}

func benchJSON(t *testing.T, path string, batch int) benchReport {
	var out bytes.Buffer
	if err := runBench(&out, io.Discard, []string{"--json", "--batch", fmt.Sprint(batch), path}); err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestBenchPerKindExact: per-kind bytes add up to the blocks at any batch
// size, equal the blocks' own sizes at --batch 1, and at --batch 16 charge
// each stanza its compressed bytes: the presences (tiny once compressed)
// cost about what they cost at batch 1, not a share of the random payloads
// by raw size.
func TestBenchPerKindExact(t *testing.T) {
	path := benchCapture(t)
	st, err := compress.ReadCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := compress.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, s := range st {
		blk, err := enc.Encode([][]byte{s})
		if err != nil {
			t.Fatal(err)
		}
		want[compress.Kind(s)] += len(blk)
	}
	one := benchJSON(t, path, 1)
	for k, n := range want {
		if got := one.Methods["isthmus"].PerKind[k]; math.Abs(got-float64(n)) > 0.1 {
			t.Errorf("batch 1: %s %.1f bytes, the blocks hold %d", k, got, n)
		}
	}
	sixteen := benchJSON(t, path, 16)
	for name, m := range sixteen.Methods {
		sum := 0.0
		for _, v := range m.PerKind {
			sum += v
		}
		if math.Abs(sum-float64(m.Bytes)) > 0.2 {
			t.Errorf("batch 16: %s per kind adds up to %.1f, the blocks to %d", name, sum, m.Bytes)
		}
	}
	p1 := one.Methods["isthmus"].PerKind["presence"] / 64
	p16 := sixteen.Methods["isthmus"].PerKind["presence"] / 64
	if p16 > 2*p1+2 {
		t.Errorf("batch 16 charges a presence %.1f bytes, batch 1 %.1f: shared by raw size?", p16, p1)
	}
}

// TestBenchClasses: --classes counts every stanza in one class and its
// per-class bytes add up to the blocks; the capture's presences and
// messages land in the classes stanzaClass names for them.
func TestBenchClasses(t *testing.T) {
	path := benchCapture(t)
	for _, batch := range []int{1, 16} {
		var out bytes.Buffer
		if err := runBench(&out, io.Discard, []string{"--json", "--classes", "--batch", fmt.Sprint(batch), path}); err != nil {
			t.Fatal(err)
		}
		var rep benchReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.PerClass["presence available"] != 64 || rep.PerClass["message other"] != 64 || len(rep.PerClass) != 2 {
			t.Fatalf("batch %d: classes %v, want 64 presence available and 64 message other", batch, rep.PerClass)
		}
		for name, m := range rep.Methods {
			sum := 0.0
			for _, v := range m.PerClass {
				sum += v
			}
			if math.Abs(sum-float64(m.Bytes)) > 0.2 {
				t.Errorf("batch %d: %s per class adds up to %.1f, the blocks to %d", batch, name, sum, m.Bytes)
			}
		}
	}
}

func TestStanzaClass(t *testing.T) {
	for st, want := range map[string]string{
		`<presence from='r@muc.b/n' to='u@a/r'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>`: "presence muc occupant",
		`<presence from='u@a/r' to='r@muc.b/n'><x xmlns='http://jabber.org/protocol/muc'/></presence>`:                                                      "presence muc join",
		`<presence from='u@a' to='v@b' type='subscribe'/>`:                                                                                                  "presence subscription",
		`<message from='r@muc.b/n' to='u@a/r' type='groupchat'><body>hi</body></message>`:                                                                   "message groupchat",
		`<message from='u@a/r' to='r@muc.b/n' type='chat'><x xmlns='http://jabber.org/protocol/muc#user'/><body>hi</body></message>`:                        "message muc private",
		`<message from='u@a/r' to='v@b/r'><received xmlns='urn:xmpp:receipts' id='x'/></message>`:                                                           "message receipt",
		`<iq from='u@a/r' to='r@muc.b' type='set' id='1'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>`:                                        "iq muc#owner set",
		`<iq from='a' to='u@b/r' type='result' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`:                                          "iq disco#info result",
	} {
		if got := stanzaClass([]byte(st)); got != want {
			t.Errorf("%s: class %q, want %q", st, got, want)
		}
	}
}

// TestBenchDict: --dict measures with the dictionary in a file; the
// embedded one read back from a file gives the same bytes.
func TestBenchDict(t *testing.T) {
	path := benchCapture(t)
	dict := filepath.Join(t.TempDir(), "d.zdict")
	if err := os.WriteFile(dict, compress.Dictionary(), 0o644); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := runBench(&a, io.Discard, []string{"--json", path}); err != nil {
		t.Fatal(err)
	}
	if err := runBench(&b, io.Discard, []string{"--json", "--dict", dict, path}); err != nil {
		t.Fatal(err)
	}
	var ra, rb benchReport
	if err := json.Unmarshal(a.Bytes(), &ra); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &rb); err != nil {
		t.Fatal(err)
	}
	if ra.Methods["isthmus"].Bytes != rb.Methods["isthmus"].Bytes {
		t.Errorf("embedded dictionary %d bytes, the same from a file %d", ra.Methods["isthmus"].Bytes, rb.Methods["isthmus"].Bytes)
	}
	if err := runBench(io.Discard, io.Discard, []string{"--dict", dict, "--no-dict", path}); err == nil {
		t.Error("--dict with --no-dict accepted")
	}
}

// --max-size leaves out the stanzas of that size or more, as the issue's
// "stanzas < 2000 B" rows do, and refuses a negative size.
func TestBenchMaxSize(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "corpus", "ejabberd-slixmpp-ej2pr-1.xml.gz")
	run := func(args ...string) benchReport {
		var out bytes.Buffer
		if err := runBench(&out, io.Discard, append(append([]string{"--json"}, args...), path)); err != nil {
			t.Fatal(err)
		}
		var rep benchReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	all, small := run(), run("--max-size", "2000")
	streams, err := compress.ReadCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, s := range streams {
		if len(s) < 2000 {
			want++
		}
	}
	if small.Stanzas != want || want == all.Stanzas {
		t.Errorf("--max-size 2000: %d stanzas of %d, want %d (the file must have larger ones)", small.Stanzas, all.Stanzas, want)
	}
	if err := runBench(io.Discard, io.Discard, []string{"--max-size", "-1", path}); err == nil || !strings.Contains(err.Error(), "-1") {
		t.Errorf("--max-size -1: %v, want an error naming the value", err)
	}
}
