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

// benchMethod is one method's figures; per-kind bytes attribute each block
// to its stanzas in proportion to their raw size (exact at --batch 1).
type benchMethod struct {
	Bytes      int64              `json:"bytes"`
	EncodeMBs  float64            `json:"encode_mb_s,omitempty"`
	DecodeMBs  float64            `json:"decode_mb_s,omitempty"`
	PerKind    map[string]float64 `json:"per_kind_bytes"`
	ColdBytes  int64              `json:"cold_bytes,omitempty"` // first coldN stanzas of each stream
	kindFloats map[string]float64
}

type benchReport struct {
	Stanzas   int                     `json:"stanzas"`
	Batch     int                     `json:"batch"`
	Methods   map[string]*benchMethod `json:"methods"`
	Files     []string                `json:"files"`
	PerKind   map[string]int          `json:"per_kind_stanzas"`
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: isthmus bench [--batch N] [--json] FILE...\n\nEach FILE is a raw capture of one direction of an S2S stream (.gz accepted).")
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
	if *noDict {
		opts = append(opts, compress.WithDict(nil))
	}
	rep := &benchReport{Batch: *batch, Methods: map[string]*benchMethod{}, PerKind: map[string]int{}, ColdN: coldN}
	for _, m := range benchMethods {
		rep.Methods[m] = &benchMethod{PerKind: map[string]float64{}}
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
			rawTotal += int64(len(s))
		}
		if err := benchStream(rep, st, *batch, opts); err != nil {
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
		for k, v := range m.kindFloats {
			m.PerKind[k] = float64(int64(v*10+0.5)) / 10
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

// benchStream runs every method over one stream's stanzas, in the same
// batches, and adds up the bytes.
func benchStream(rep *benchReport, st [][]byte, batch int, opts []compress.Option) error {
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
		sizes := map[string]int{"raw": raw, "zlib": zb.Len(), "zstd": sb.Len(), "isthmus": len(block)}
		for name, n := range sizes {
			m := rep.Methods[name]
			m.Bytes += int64(n)
			if m.kindFloats == nil {
				m.kindFloats = map[string]float64{}
			}
			for j, s := range b {
				m.kindFloats[compress.Kind(s)] += float64(n) * float64(len(s)) / float64(raw)
				if i+j < coldN {
					m.ColdBytes += int64(float64(n)*float64(len(s))/float64(raw) + 0.5)
				}
			}
		}
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
	fmt.Fprintf(w, "%d stanzas from %d file(s), batch %d; bytes per stanza (per-kind figures share each block by raw size)\n\n", rep.Stanzas, len(rep.Files), rep.Batch)
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
	is := rep.Methods["isthmus"]
	fmt.Fprintf(w, "\nisthmus: encode %.1f MB/s, decode %.1f MB/s of raw XML (one core)\n", is.EncodeMBs, is.DecodeMBs)
	cold := min(rep.ColdN*len(rep.Files), rep.Stanzas)
	fmt.Fprintf(w, "cold start: first %d stanzas of each stream %.1f B/stanza (zlib %.1f), whole run %.1f B/stanza\n",
		rep.ColdN, float64(is.ColdBytes)/float64(cold), float64(rep.Methods["zlib"].ColdBytes)/float64(cold), float64(is.Bytes)/float64(rep.Stanzas))
	fmt.Fprintf(w, "verified: %d stanzas decoded to their input (%d byte for byte, the rest canonicalized)\n", rep.Verified, rep.Identical)
}
