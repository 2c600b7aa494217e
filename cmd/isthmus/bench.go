package main

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/isthmus-xmpp/isthmus/compress"
	"github.com/klauspost/compress/zstd"
)

func init() {
	register("bench", "compare the codec with plain XML, XEP-0138 zlib and streaming zstd on S2S captures", func(args []string) error {
		return runBench(os.Stdout, os.Stderr, args)
	})
}

var benchKinds = []string{"message", "presence", "iq", "other"}

// benchMethod is one method's figures; per-kind and cold-start bytes share
// each block among its stanzas by what each added to the compressed stream
// (shadows; exact at --batch 1, and adding up to the blocks at any size).
type benchMethod struct {
	Bytes      int64              `json:"bytes"`
	EncodeMBs  float64            `json:"encode_mb_s,omitempty"`
	DecodeMBs  float64            `json:"decode_mb_s,omitempty"`
	PerKind    map[string]float64 `json:"per_kind_bytes"`
	ColdBytes  int64              `json:"cold_bytes,omitempty"` // first coldN stanzas of each stream
	PerClass   map[string]float64 `json:"per_class_bytes,omitempty"`
	kindFloats map[string]float64
	classFloat map[string]float64
	coldFloat  float64
}

type benchReport struct {
	Stanzas   int                     `json:"stanzas"`
	Batch     int                     `json:"batch"`
	Methods   map[string]*benchMethod `json:"methods"`
	Files     []string                `json:"files"`
	PerKind   map[string]int          `json:"per_kind_stanzas"`
	PerClass  map[string]int          `json:"per_class_stanzas,omitempty"`
	ColdN     int                     `json:"cold_stanzas"`
	Verified  int                     `json:"verified"`
	Identical int                     `json:"identical"`
}

const coldN = 32

var benchMethods = []string{"raw", "zlib", "zstd", "isthmus"}

func runBench(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 1, "stanzas per flush (`N`)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	noDict := fs.Bool("no-dict", false, "isthmus without the embedded dictionary")
	dictFile := fs.String("dict", "", "isthmus with the dictionary in `FILE` (as train-dict writes it) instead of the embedded one")
	maxSize := fs.Int("max-size", 0, "leave out stanzas of `N` bytes or more (0: none), as for the issue's \"stanzas < 2000 B\" rows")
	classes := fs.Bool("classes", false, "also print figures per stanza class (MUC presence, groupchat, receipt, disco result, ...)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: isthmus bench [--batch N] [--max-size N] [--classes] [--no-dict | --dict FILE] [--json] FILE...

Each FILE is a raw capture of one direction of an S2S stream (.gz accepted).
Per-kind and cold-start figures share each block among the stanzas of its
batch by the bytes each one added to a copy of that method's compressed
stream flushed after every stanza (for isthmus: its structural form in the
codec's zstd stream): they add up to the blocks at any batch size and are
each block's own size at --batch 1.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *batch < 1 || *batch > compress.MaxBatchStanzas {
		fs.Usage()
		return errUsage
	}
	var opts []compress.Option
	dict := compress.Dictionary()
	switch {
	case *noDict && *dictFile != "":
		fmt.Fprintln(stderr, "bench: --no-dict and --dict exclude each other")
		return errUsage
	case *noDict:
		opts = append(opts, compress.WithDict(nil))
		dict = nil
	case *dictFile != "":
		d, err := os.ReadFile(*dictFile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		opts = append(opts, compress.WithDict(d))
		dict = d
	}
	rep := &benchReport{Batch: *batch, Methods: map[string]*benchMethod{}, PerKind: map[string]int{}, PerClass: map[string]int{}, ColdN: coldN}
	for _, m := range benchMethods {
		rep.Methods[m] = &benchMethod{PerKind: map[string]float64{}}
	}
	if *maxSize < 0 {
		return fmt.Errorf("bench: --max-size %d is negative", *maxSize)
	}
	var streams [][][]byte
	pr := newProgress(stderr) // quiet unless stderr is a terminal
	defer pr.Done()
	for i, path := range fs.Args() {
		pr.Set("bench: reading %s (%d/%d)", path, i+1, fs.NArg())
		st, err := compress.ReadCapture(path)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if *maxSize > 0 {
			st = slices.DeleteFunc(st, func(s []byte) bool { return len(s) >= *maxSize })
		}
		if len(st) == 0 {
			fmt.Fprintf(stderr, "bench: %s: no stanzas\n", path)
			continue
		}
		rep.Files = append(rep.Files, path)
		streams = append(streams, st)
	}
	if len(streams) == 0 {
		return errors.New("bench: no stanzas in the files given")
	}
	var rawTotal int64
	var encTime, decTime time.Duration
	for i, st := range streams {
		pr.Set("bench: compressing stream %d/%d (%d stanzas)", i+1, len(streams), len(st))
		rep.Stanzas += len(st)
		for _, s := range st {
			rep.PerKind[compress.Kind(s)]++
			rep.PerClass[stanzaClass(s)]++
			rawTotal += int64(len(s))
		}
		if err := benchStream(rep, st, *batch, opts, dict); err != nil {
			return err
		}
		et, dt, err := timeIsthmus(st, *batch, opts)
		if err != nil {
			return err
		}
		encTime += et
		decTime += dt
	}
	pr.Set("bench: verifying %d streams", len(streams))
	if err := verifyStreams(rep, streams, *batch, opts); err != nil {
		return err
	}
	is := rep.Methods["isthmus"]
	is.EncodeMBs = float64(rawTotal) / 1e6 / encTime.Seconds()
	is.DecodeMBs = float64(rawTotal) / 1e6 / decTime.Seconds()
	for _, m := range rep.Methods {
		m.ColdBytes = int64(m.coldFloat + 0.5)
		for k, v := range m.kindFloats {
			m.PerKind[k] = float64(int64(v*10+0.5)) / 10
		}
		if *classes {
			m.PerClass = map[string]float64{}
			for k, v := range m.classFloat {
				m.PerClass[k] = float64(int64(v*10+0.5)) / 10
			}
		}
	}
	if !*classes {
		rep.PerClass = nil
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

// benchStream runs every method over one stream's stanzas, in the same
// batches, and adds up the bytes. Each block's bytes are then shared among
// its stanzas (per-kind and cold-start figures; see shareBlock).
func benchStream(rep *benchReport, st [][]byte, batch int, opts []compress.Option, dict []byte) error {
	var zb bytes.Buffer
	zw, err := zlib.NewWriterLevel(&zb, 6)
	if err != nil {
		return err
	}
	var sb bytes.Buffer
	sw, err := zstd.NewWriter(&sb, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compress.WindowSize), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
	if err != nil {
		return err
	}
	defer sw.Close()
	enc, err := compress.NewEncoder(opts...)
	if err != nil {
		return err
	}
	sh, err := newShadows(dict)
	if err != nil {
		return err
	}
	defer sh.close()
	weights := map[string][]float64{}
	for i := 0; i < len(st); i += batch {
		b := st[i:min(i+batch, len(st))]
		raw := 0
		for _, s := range b {
			raw += len(s)
		}
		zb.Reset()
		for _, s := range b {
			zw.Write(s)
		}
		if err := zw.Flush(); err != nil {
			return err
		}
		sb.Reset()
		for _, s := range b {
			sw.Write(s)
		}
		if err := sw.Flush(); err != nil {
			return err
		}
		block, err := enc.Encode(b)
		if err != nil {
			return fmt.Errorf("bench: isthmus: %w", err)
		}
		if err := sh.weigh(weights, b, enc); err != nil {
			return err
		}
		sizes := map[string]int{"raw": raw, "zlib": zb.Len(), "zstd": sb.Len(), "isthmus": len(block)}
		for name, n := range sizes {
			m := rep.Methods[name]
			m.Bytes += int64(n)
			if m.kindFloats == nil {
				m.kindFloats = map[string]float64{}
				m.classFloat = map[string]float64{}
			}
			for j, share := range shareBlock(n, weights[name], b) {
				m.kindFloats[compress.Kind(b[j])] += share
				m.classFloat[stanzaClass(b[j])] += share
				if i+j < coldN {
					m.coldFloat += share
				}
			}
		}
	}
	return nil
}

// shareBlock splits a block of n bytes among the stanzas of its batch in
// proportion to their weights (by raw size when they are all 0): the
// shares add up to n exactly, and a batch of one gets the whole block.
func shareBlock(n int, w []float64, b [][]byte) []float64 {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	out := make([]float64, len(b))
	for j := range b {
		if sum > 0 {
			out[j] = float64(n) * w[j] / sum
		} else {
			raw := 0
			for _, s := range b {
				raw += len(s)
			}
			out[j] = float64(n) * float64(len(b[j])) / float64(raw)
		}
	}
	return out
}

// shadows measure what each stanza of a batch costs in each compressed
// stream: a second stream per method is fed the same bytes in the same
// order, but flushed after every stanza, and a stanza's weight is how much
// that stream grew with it, less the framing one flush costs (a zstd block
// header; zlib's empty stored block). The streams hold the same history as
// the real ones, so a stanza that repeats earlier traffic weighs little and
// one full of random bytes weighs them all; the real block is then shared
// by these weights (shareBlock), so the per-kind figures add up to the
// block, equal it at --batch 1, and at any batch size charge each stanza
// for the compressed bytes it brought, not for its raw size. For isthmus
// the shadow is fed the stanza's structural form (Encoder.LastBatch) and
// uses the codec's zstd settings and dictionary; a batch outside the zstd
// stream is shared by structural bytes, which is what its block carries.
type shadows struct {
	zb, sb, ib bytes.Buffer
	zw         *zlib.Writer
	sw, iw     *zstd.Encoder
	zlibFlush  float64
}

// zstdBlockHeader is the framing of one zstd block.
const zstdBlockHeader = 3

func newShadows(dict []byte) (*shadows, error) {
	sh := &shadows{}
	var err error
	if sh.zw, err = zlib.NewWriterLevel(&sh.zb, 6); err != nil {
		return nil, err
	}
	// The cost of one flush: an empty one after the zlib header.
	sh.zw.Flush()
	n := sh.zb.Len()
	sh.zw.Flush()
	sh.zlibFlush = float64(sh.zb.Len() - n)
	if sh.sw, err = zstd.NewWriter(&sh.sb, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compress.WindowSize), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true)); err != nil {
		return nil, err
	}
	zo := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compress.WindowSize), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true)}
	if len(dict) > 0 {
		zo = append(zo, zstd.WithEncoderDict(dict))
	}
	if sh.iw, err = zstd.NewWriter(&sh.ib, zo...); err != nil {
		return nil, err
	}
	return sh, nil
}

func (sh *shadows) close() {
	sh.sw.Close()
	sh.iw.Close()
}

// growth writes p to w, flushes, and returns how much buf grew, less the
// framing of a flush.
func growth(w interface {
	Write([]byte) (int, error)
	Flush() error
}, buf *bytes.Buffer, p []byte, framing float64) (float64, error) {
	n := buf.Len()
	if _, err := w.Write(p); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return max(0, float64(buf.Len()-n)-framing), nil
}

// weigh sets the weights of the batch b (just encoded by enc) per method.
func (sh *shadows) weigh(weights map[string][]float64, b [][]byte, enc *compress.Encoder) error {
	for _, m := range benchMethods {
		weights[m] = weights[m][:0]
	}
	sh.zb.Reset()
	sh.sb.Reset()
	sh.ib.Reset()
	payload, ends, inZstd := enc.LastBatch()
	start := 0
	for j, s := range b {
		weights["raw"] = append(weights["raw"], float64(len(s)))
		g, err := growth(sh.zw, &sh.zb, s, sh.zlibFlush)
		if err != nil {
			return err
		}
		weights["zlib"] = append(weights["zlib"], g)
		if g, err = growth(sh.sw, &sh.sb, s, zstdBlockHeader); err != nil {
			return err
		}
		weights["zstd"] = append(weights["zstd"], g)
		part := payload[start:ends[j]]
		start = ends[j]
		if !inZstd {
			weights["isthmus"] = append(weights["isthmus"], float64(len(part)))
			continue
		}
		if g, err = growth(sh.iw, &sh.ib, part, zstdBlockHeader); err != nil {
			return err
		}
		weights["isthmus"] = append(weights["isthmus"], g)
	}
	return nil
}

// timeIsthmus measures encoding and decoding of one stream on one core:
// the best of a few passes.
func timeIsthmus(st [][]byte, batch int, opts []compress.Option) (enc, dec time.Duration, err error) {
	var blocks [][]byte
	enc, dec = time.Duration(1<<62), time.Duration(1<<62)
	for pass := 0; pass < 5; pass++ {
		e, err := compress.NewEncoder(opts...)
		if err != nil {
			return 0, 0, err
		}
		blocks = blocks[:0]
		runtime.GC()
		t0 := time.Now()
		for i := 0; i < len(st); i += batch {
			b, err := e.Encode(st[i:min(i+batch, len(st))])
			if err != nil {
				return 0, 0, err
			}
			blocks = append(blocks, bytes.Clone(b))
		}
		enc = min(enc, time.Since(t0))
		d, err := compress.NewDecoder(opts...)
		if err != nil {
			return 0, 0, err
		}
		t0 = time.Now()
		for _, b := range blocks {
			if _, err := d.Decode(b); err != nil {
				return 0, 0, err
			}
		}
		dec = min(dec, time.Since(t0))
		d.Close()
	}
	return enc, dec, nil
}

// verifyStreams decodes every stream and checks each stanza against its
// input: identical bytes, or the same infoset (the documented
// canonicalization).
func verifyStreams(rep *benchReport, streams [][][]byte, batch int, opts []compress.Option) error {
	for f, st := range streams {
		e, err := compress.NewEncoder(opts...)
		if err != nil {
			return err
		}
		d, err := compress.NewDecoder(opts...)
		if err != nil {
			return err
		}
		for i := 0; i < len(st); i += batch {
			in := st[i:min(i+batch, len(st))]
			b, err := e.Encode(in)
			if err != nil {
				return err
			}
			out, err := d.Decode(bytes.Clone(b))
			if err != nil {
				return fmt.Errorf("bench: %s: decoding batch at stanza %d: %w", rep.Files[f], i, err)
			}
			if len(out) != len(in) {
				return fmt.Errorf("bench: %s: batch at stanza %d: %d stanzas decoded, want %d", rep.Files[f], i, len(out), len(in))
			}
			for j := range in {
				switch {
				case bytes.Equal(out[j], in[j]):
					rep.Identical++
				case compress.EqualInfoset(out[j], in[j]):
				default:
					return fmt.Errorf("bench: %s: stanza %d decoded differently:\n in: %s\nout: %s", rep.Files[f], i+j, in[j], out[j])
				}
				rep.Verified++
			}
		}
		d.Close()
	}
	return nil
}

func printBench(w io.Writer, rep *benchReport) {
	fmt.Fprintf(w, "%d stanzas from %d file(s), batch %d; bytes per stanza (per-kind figures share each block by each stanza's compressed bytes)\n\n", rep.Stanzas, len(rep.Files), rep.Batch)
	fmt.Fprintf(w, "%-9s %7s %9s %9s %9s %9s %10s %11s\n", "kind", "stanzas", "raw", "zlib", "zstd", "isthmus", "raw/isth", "zlib/isth")
	row := func(name string, n int, get func(m *benchMethod) float64) {
		if n == 0 {
			return
		}
		v := map[string]float64{}
		for _, m := range benchMethods {
			v[m] = get(rep.Methods[m]) / float64(n)
		}
		fmt.Fprintf(w, "%-9s %7d %9.1f %9.1f %9.1f %9.1f %9.1fx %10.2fx\n", name, n, v["raw"], v["zlib"], v["zstd"], v["isthmus"], v["raw"]/v["isthmus"], v["zlib"]/v["isthmus"])
	}
	for _, k := range benchKinds {
		row(k, rep.PerKind[k], func(m *benchMethod) float64 { return m.kindFloats[k] })
	}
	row("total", rep.Stanzas, func(m *benchMethod) float64 { return float64(m.Bytes) })
	if len(rep.PerClass) > 0 {
		fmt.Fprintf(w, "\n%-26s %7s %9s %9s %9s %9s %10s %11s\n", "class", "stanzas", "raw", "zlib", "zstd", "isthmus", "raw/isth", "zlib/isth")
		var names []string
		for c := range rep.PerClass {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			n := rep.PerClass[c]
			v := map[string]float64{}
			for _, m := range benchMethods {
				v[m] = rep.Methods[m].classFloat[c] / float64(n)
			}
			fmt.Fprintf(w, "%-26s %7d %9.1f %9.1f %9.1f %9.1f %9.1fx %10.2fx\n", c, n, v["raw"], v["zlib"], v["zstd"], v["isthmus"], v["raw"]/v["isthmus"], v["zlib"]/v["isthmus"])
		}
	}
	is := rep.Methods["isthmus"]
	fmt.Fprintf(w, "\nisthmus: encode %.1f MB/s, decode %.1f MB/s of raw XML (one core)\n", is.EncodeMBs, is.DecodeMBs)
	cold := min(rep.ColdN*len(rep.Files), rep.Stanzas)
	fmt.Fprintf(w, "cold start: first %d stanzas of each stream %.1f B/stanza (zlib %.1f), whole run %.1f B/stanza\n",
		rep.ColdN, float64(is.ColdBytes)/float64(cold), float64(rep.Methods["zlib"].ColdBytes)/float64(cold), float64(is.Bytes)/float64(rep.Stanzas))
	fmt.Fprintf(w, "verified: %d stanzas decoded to their input (%d byte for byte, the rest canonicalized)\n", rep.Verified, rep.Identical)
}

// stanzaClass names what kind of traffic a stanza is, for --classes: the
// classes the codec is tuned and judged on (issue 11: MUC presence,
// groupchat, receipts, disco results, ...). It looks at the XML text only.
func stanzaClass(s []byte) string {
	has := func(sub string) bool { return bytes.Contains(s, []byte(sub)) }
	typ := func(t string) bool { return has("type='"+t+"'") || has(`type="`+t+`"`) }
	switch compress.Kind(s) {
	case "presence":
		switch {
		case has("protocol/muc#user"):
			if typ("unavailable") {
				return "presence muc leave"
			}
			return "presence muc occupant"
		case has("protocol/muc'") || has(`protocol/muc"`):
			return "presence muc join"
		case typ("unavailable"):
			return "presence unavailable"
		case typ("subscribe") || typ("subscribed") || typ("unsubscribe") || typ("unsubscribed"):
			return "presence subscription"
		case typ("probe"):
			return "presence probe"
		}
		return "presence available"
	case "message":
		switch {
		case has("<encrypted"):
			return "message encrypted"
		case has("pubsub#event"):
			return "message pep event"
		case typ("groupchat") && has("<subject"):
			return "message muc subject"
		case typ("groupchat"):
			return "message groupchat"
		case has("protocol/muc#user"):
			return "message muc private"
		case has("jabber:x:conference"):
			return "message muc invite"
		case has("<body"):
			return "message chat"
		case has("urn:xmpp:receipts"):
			return "message receipt"
		case has("chat-markers"):
			return "message marker"
		case has("chatstates"):
			return "message chat state"
		}
		return "message other"
	case "iq":
		t := "other"
		for _, x := range []string{"get", "set", "result", "error"} {
			if typ(x) {
				t = x
				break
			}
		}
		switch {
		case has("muc#owner"):
			return "iq muc#owner " + t
		case has("muc#admin"):
			return "iq muc#admin " + t
		case has("disco#info"):
			return "iq disco#info " + t
		case has("disco#items"):
			return "iq disco#items " + t
		case has("vcard-temp"):
			return "iq vcard " + t
		case has("protocol/pubsub"):
			return "iq pubsub " + t
		case has("urn:xmpp:mam"):
			return "iq mam " + t
		}
		return "iq " + t
	}
	return "other"
}
