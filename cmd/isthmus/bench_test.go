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

// writeCapture writes a capture (plain XML) of stanzas under a stream
// header from from to to, named name in dir.
func writeCapture(t *testing.T, dir, name, from, to string, stanzas []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' xmlns:db='jabber:server:dialback' to='%s' version='1.0' from='%s'>", to, from)
	for _, s := range stanzas {
		b.WriteString(s)
	}
	b.WriteString("</stream:stream>")
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sessionCaptures writes the two directions of a tiny session: a.test
// sends messages and iq gets with long random ids, b.test answers each
// with a receipt or an iq result naming that id. The names say nothing of
// the pairing (the answers' file sorts first).
func sessionCaptures(t *testing.T, dir string) (x, y string) {
	return sessionCapturesSeed(t, dir, 2, "")
}

// sessionCapturesSeed is sessionCaptures with other ids (seed) and names
// (suffix).
func sessionCapturesSeed(t *testing.T, dir string, seed int64, suffix string) (x, y string) {
	r := rand.New(rand.NewSource(seed))
	id := func() string { return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()) }
	var xs, ys []string
	for i := 0; i < 48; i++ {
		v := id()
		if i%4 == 3 {
			xs = append(xs, fmt.Sprintf("<iq from='u%d@a.test/r' to='v%d@b.test/r' type='get' id='%s'><query xmlns='jabber:iq:version'/></iq>", i%5, i%7, v))
			ys = append(ys, fmt.Sprintf("<iq from='v%d@b.test/r' to='u%d@a.test/r' type='result' id='%s'><query xmlns='jabber:iq:version'><name>x</name></query></iq>", i%7, i%5, v))
			continue
		}
		xs = append(xs, fmt.Sprintf("<message from='u%d@a.test/r' to='v%d@b.test' type='chat' id='%s'><body>hello %d</body><request xmlns='urn:xmpp:receipts'/></message>", i%5, i%7, v, i))
		ys = append(ys, fmt.Sprintf("<message from='v%d@b.test/r' to='u%d@a.test/r' id='%s'><received xmlns='urn:xmpp:receipts' id='%s'/></message>", i%7, i%5, id(), v))
	}
	return writeCapture(t, dir, "q"+suffix+".xml", "a.test", "b.test", xs), writeCapture(t, dir, "p"+suffix+".xml", "b.test", "a.test", ys)
}

// TestBenchPairsByIDs: two sessions between the same two domains (as
// captures of several runs or client libraries are): their files pair by
// the ids they share, whatever the argument order, and every id echoes.
func TestBenchPairsByIDs(t *testing.T) {
	dir := t.TempDir()
	x1, y1 := sessionCapturesSeed(t, dir, 2, "1")
	x2, y2 := sessionCapturesSeed(t, dir, 3, "2")
	for _, args := range [][]string{{x1, x2, y2, y1}, {y1, y2, x1, x2}, {x2, y1, x1, y2}} {
		rep := benchRun(t, args...)
		got := map[[2]string]bool{}
		for _, s := range rep.Sessions {
			got[s] = true
			got[[2]string{s[1], s[0]}] = true
		}
		if len(rep.Sessions) != 2 || !got[[2]string{x1, y1}] || !got[[2]string{x2, y2}] {
			t.Errorf("%v: sessions %v, want %s with %s and %s with %s", args, rep.Sessions, x1, y1, x2, y2)
		}
		if rep.Echoed < 96 {
			t.Errorf("%v: %d values echoed, want the 96 ids at least", args, rep.Echoed)
		}
	}
}

func benchRun(t *testing.T, args ...string) benchReport {
	t.Helper()
	var out bytes.Buffer
	if err := runBench(&out, io.Discard, append([]string{"--json"}, args...)); err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReadCaptureHeader(t *testing.T) {
	st, from, to, err := compress.ReadCaptureHeader(filepath.Join("..", "..", "testdata", "corpus", "prosody-slixmpp-prmuc2ej-1.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if from != "conference.pr.test" || to != "ej.test" || len(st) == 0 {
		t.Errorf("from %q to %q, %d stanzas; want conference.pr.test, ej.test and some", from, to, len(st))
	}
}

// TestBenchSession: two captures whose headers have from and to swapped
// run as one session, and the answers' ids echo the requests': fewer
// isthmus bytes than with --no-echo, every stanza verified, and the zlib
// and zstd figures (per file) unchanged.
func TestBenchSession(t *testing.T) {
	x, y := sessionCaptures(t, t.TempDir())
	for _, batch := range []string{"1", "16"} {
		with := benchRun(t, "--batch", batch, y, x)
		without := benchRun(t, "--batch", batch, "--no-echo", y, x)
		if len(with.Sessions) != 1 || with.Sessions[0] != [2]string{y, x} || with.PairedFiles != 2 {
			t.Fatalf("batch %s: sessions %v (%d files paired), want [%s %s]", batch, with.Sessions, with.PairedFiles, y, x)
		}
		if len(without.Sessions) != 0 || without.PairedFiles != 0 || without.Echoed != 0 || !without.NoEcho {
			t.Errorf("batch %s: --no-echo: sessions %v, %d paired, %d echoed", batch, without.Sessions, without.PairedFiles, without.Echoed)
		}
		wi, wo := with.Methods["isthmus"].Bytes, without.Methods["isthmus"].Bytes
		t.Logf("batch %s: %d ids echoed, %d bytes with, %d without", batch, with.Echoed, wi, wo)
		// Every answer follows its request in Interleave's order, and at
		// batch 16 each block of answers goes after the block of requests
		// they answer (the streams alternate): all 48 ids echo (and values
		// too, such as the domains the other direction named first).
		if with.Echoed < 48 || wi >= wo {
			t.Errorf("batch %s: %d ids echoed, %d bytes with, %d without", batch, with.Echoed, wi, wo)
		}
		if with.Verified != 96 || with.Stanzas != 96 {
			t.Errorf("batch %s: %d of %d stanzas verified, want 96", batch, with.Verified, with.Stanzas)
		}
		for _, m := range []string{"raw", "zlib", "zstd"} {
			if with.Methods[m].Bytes != without.Methods[m].Bytes {
				t.Errorf("batch %s: %s %d bytes in a session, %d alone", batch, m, with.Methods[m].Bytes, without.Methods[m].Bytes)
			}
		}
	}
}

// TestBenchSessionPerKindExact: in a session, per-kind and cold-start
// bytes at --batch 1 are each block's own size (the blocks of a replay of
// the session through two gateways wired as newGateway in
// compress/echo_test.go, in Interleave order), and at --batch 16 the
// per-kind and per-class bytes add up to the blocks.
func TestBenchSessionPerKindExact(t *testing.T) {
	x, y := sessionCaptures(t, t.TempDir())
	xs, err := compress.ReadCapture(x)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := compress.ReadCapture(y)
	if err != nil {
		t.Fatal(err)
	}
	type end struct {
		enc        *compress.Encoder
		dec        *compress.Decoder
		sent, recv *compress.IDLog
	}
	var ends [2]end
	for i := range ends {
		e, err := compress.NewEncoder()
		if err != nil {
			t.Fatal(err)
		}
		d, err := compress.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		g := end{e, d, compress.NewIDLog(), compress.NewIDLog()}
		e.LogIDs(g.sent)
		e.EchoIDs(g.recv)
		d.LogIDs(g.recv)
		d.EchoIDs(g.sent)
		ends[i] = g
	}
	st := [2][][]byte{xs, ys}
	var pos [2]int
	want := map[string]int{}
	cold := 0
	for _, s := range compress.Interleave(xs, ys) {
		in := st[s][pos[s]]
		blk, err := ends[s].enc.Encode([][]byte{in})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ends[1-s].dec.Decode(bytes.Clone(blk)); err != nil {
			t.Fatal(err)
		}
		want[compress.Kind(in)] += len(blk)
		if pos[s] < coldN {
			cold += len(blk)
		}
		pos[s]++
	}
	if ends[0].enc.Echoed()+ends[1].enc.Echoed() == 0 {
		t.Fatal("the replay echoed nothing")
	}
	one := benchRun(t, x, y)
	for k, n := range want {
		if got := one.Methods["isthmus"].PerKind[k]; math.Abs(got-float64(n)) > 0.1 {
			t.Errorf("batch 1: %s %.1f bytes, the blocks hold %d", k, got, n)
		}
	}
	if got := one.Methods["isthmus"].ColdBytes; got != int64(cold) {
		t.Errorf("batch 1: cold start %d bytes, the blocks hold %d", got, cold)
	}
	if one.ColdCount != 64 {
		t.Errorf("cold count %d, want 64 (32 of each stream)", one.ColdCount)
	}
	sixteen := benchRun(t, "--batch", "16", "--classes", x, y)
	for name, m := range sixteen.Methods {
		kinds, classes := 0.0, 0.0
		for _, v := range m.PerKind {
			kinds += v
		}
		for _, v := range m.PerClass {
			classes += v
		}
		if math.Abs(kinds-float64(m.Bytes)) > 0.2 || math.Abs(classes-float64(m.Bytes)) > 0.2 {
			t.Errorf("batch 16: %s per kind adds up to %.1f, per class to %.1f, the blocks to %d", name, kinds, classes, m.Bytes)
		}
	}
}

// TestBenchUnpaired: a file without a partner runs as with --no-echo,
// and each file pairs at most once (between two candidates that share as
// many ids, the first in argument order); the files run alone add their
// own figures.
func TestBenchUnpaired(t *testing.T) {
	dir := t.TempDir()
	x, y := sessionCaptures(t, dir)
	data, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}
	x2 := filepath.Join(dir, "x2.xml") // the same header as x
	if err := os.WriteFile(x2, data, 0o644); err != nil {
		t.Fatal(err)
	}
	lone := benchCapture(t) // a.test -> b.test too
	alone := benchRun(t, lone)
	if alone.PairedFiles != 0 || alone.Echoed != 0 {
		t.Fatalf("one file: %d paired, %d echoed", alone.PairedFiles, alone.Echoed)
	}
	noEcho := benchRun(t, "--no-echo", lone)
	if alone.Methods["isthmus"].Bytes != noEcho.Methods["isthmus"].Bytes || alone.Methods["isthmus"].ColdBytes != noEcho.Methods["isthmus"].ColdBytes {
		t.Errorf("a file alone: %d bytes, %d with --no-echo", alone.Methods["isthmus"].Bytes, noEcho.Methods["isthmus"].Bytes)
	}
	pair := benchRun(t, x, y)
	x2Alone := benchRun(t, x2)
	for _, c := range []struct {
		args []string
		want [2]string
	}{
		{[]string{x, y, x2}, [2]string{x, y}},
		{[]string{x2, x, y}, [2]string{x2, y}},
		{[]string{y, x2, x}, [2]string{y, x2}},
	} {
		rep := benchRun(t, c.args...)
		if len(rep.Sessions) != 1 || rep.Sessions[0] != c.want {
			t.Errorf("%v: sessions %v, want %v", c.args, rep.Sessions, c.want)
			continue
		}
		if got, want := rep.Methods["isthmus"].Bytes, pair.Methods["isthmus"].Bytes+x2Alone.Methods["isthmus"].Bytes; got != want {
			t.Errorf("%v: %d bytes, the session and a file alone %d", c.args, got, want)
		}
		if rep.Echoed != pair.Echoed || rep.Verified != 144 {
			t.Errorf("%v: %d echoed (the session alone %d), %d verified", c.args, rep.Echoed, pair.Echoed, rep.Verified)
		}
	}
}

// TestBenchSchedule: a session's blocks hold every stanza once, each
// stream in order, and batch stanzas each but for each stream's last.
func TestBenchSchedule(t *testing.T) {
	mk := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte(fmt.Sprintf("<message id='%d'/>", i))
		}
		return out
	}
	st := [][][]byte{mk(37), mk(20)}
	for _, batch := range []int{1, 5, 16, 64} {
		next := [2]int{}
		for k, bl := range benchSchedule(st, batch) {
			if bl.start != next[bl.s] || bl.end <= bl.start {
				t.Fatalf("batch %d: block %d is %+v, stream %d is at %d", batch, k, bl, bl.s, next[bl.s])
			}
			if bl.end-bl.start != batch && bl.end != len(st[bl.s]) {
				t.Fatalf("batch %d: block %d is %+v: short before the end", batch, k, bl)
			}
			next[bl.s] = bl.end
		}
		if next[0] != 37 || next[1] != 20 {
			t.Fatalf("batch %d: blocks end at %v", batch, next)
		}
	}
}
