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
	ColdCount int                     `json:"cold_count"` // stanzas among the first ColdN of their stream
	Verified  int                     `json:"verified"`
	Identical int                     `json:"identical"`
	// Echoed ids: the two directions of a session run through two
	// gateways (Sessions, PairedFiles of the Files); Echoed ids crossed as
	// references to the other direction's. NoEcho: --no-echo.
	NoEcho      bool        `json:"no_echo,omitempty"`
	Sessions    [][2]string `json:"sessions,omitempty"`
	PairedFiles int         `json:"paired_files"`
	Echoed      int         `json:"echoed_ids"`
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
	noEcho := fs.Bool("no-echo", false, "run every file alone: no sessions, so no echoed ids")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: isthmus bench [--batch N] [--max-size N] [--classes] [--no-echo] [--no-dict | --dict FILE] [--json] FILE...

Each FILE is a raw capture of one direction of an S2S stream (.gz accepted).
Two files whose stream headers have from and to swapped are the two
directions of one session; among several such, files pair by the ids
they share, the most first, each at most once. A session runs through
two gateways in the order compress.Interleave gives, each stream still
flushing every N of its own stanzas, so ids and values one direction
echoes from the other (receipts, markers, iq results, what a MUC
reflects) cross as references. Other files run alone, as all do with
--no-echo. The zlib and zstd figures are per file either way.
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
	var files []benchFile
	pr := newProgress(stderr) // quiet unless stderr is a terminal
	defer pr.Done()
	for i, path := range fs.Args() {
		pr.Set("bench: reading %s (%d/%d)", path, i+1, fs.NArg())
		st, from, to, err := compress.ReadCaptureHeader(path)
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
		files = append(files, benchFile{path: path, from: from, to: to, st: st})
	}
	if len(files) == 0 {
		return errors.New("bench: no stanzas in the files given")
	}
	rep.NoEcho = *noEcho
	units := benchUnits(files, !*noEcho)
	var rawTotal int64
	for _, f := range files {
		rep.Stanzas += len(f.st)
		rep.ColdCount += min(len(f.st), coldN)
		for _, s := range f.st {
			rep.PerKind[compress.Kind(s)]++
			rep.PerClass[stanzaClass(s)]++
			rawTotal += int64(len(s))
		}
	}
	var encTime, decTime time.Duration
	for i, u := range units {
		if len(u) == 2 {
			rep.Sessions = append(rep.Sessions, [2]string{files[u[0]].path, files[u[1]].path})
			rep.PairedFiles += 2
			pr.Set("bench: compressing session %d/%d: %s and %s", i+1, len(units), files[u[0]].path, files[u[1]].path)
		} else {
			pr.Set("bench: compressing stream %d/%d: %s", i+1, len(units), files[u[0]].path)
		}
		st := make([][][]byte, len(u))
		for s, f := range u {
			st[s] = files[f].st
		}
		sched := benchSchedule(st, *batch)
		blocks, err := benchUnit(rep, files, u, sched, opts, dict)
		if err != nil {
			return err
		}
		et, dt, err := timeIsthmus(st, sched, blocks, opts)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", files[u[0]].path, err)
		}
		encTime += et
		decTime += dt
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

// benchFile is one capture: one direction of an S2S stream, its stream
// header's from and to, and its stanzas (after --max-size).
type benchFile struct {
	path, from, to string
	st             [][]byte
}

// benchUnits groups the files into what runs through one pair of
// gateways: the two directions of a session (two files whose headers have
// from and to swapped), or a file alone. With several sessions between the
// same two domains (several captures, several client libraries), headers
// alone do not say which files belong together: the ids do. A session's
// two directions share the ids one sends and the other echoes, while
// files of different sessions share none (random ids of at least 8
// characters; shorter ones such as ejabberd's "disco" are ignored). So
// the candidate pairs are taken by the number of such ids they share, the
// most first (ties in argument order), each file at most once; a file
// without from or to, or whose candidates share no id, is paired in
// argument order with the first free candidate, or runs alone, as does
// every file when pair is false (--no-echo).
func benchUnits(files []benchFile, pair bool) [][]int {
	partner := make([]int, len(files))
	for i := range partner {
		partner[i] = -1
	}
	if pair {
		ids := make([]map[string]bool, len(files))
		for i, f := range files {
			ids[i] = compress.IDSet(f.st, 8)
		}
		type cand struct{ i, j, shared int }
		var cands []cand
		for i, f := range files {
			if f.from == "" || f.to == "" || f.from == f.to {
				continue
			}
			for j := i + 1; j < len(files); j++ {
				if files[j].from == f.to && files[j].to == f.from {
					n := 0
					for v := range ids[i] {
						if ids[j][v] {
							n++
						}
					}
					cands = append(cands, cand{i, j, n})
				}
			}
		}
		sort.SliceStable(cands, func(a, b int) bool { return cands[a].shared > cands[b].shared })
		for _, c := range cands {
			if partner[c.i] < 0 && partner[c.j] < 0 {
				partner[c.i], partner[c.j] = c.j, c.i
			}
		}
	}
	var units [][]int
	for i := range files {
		switch p := partner[i]; {
		case p < 0:
			units = append(units, []int{i})
		case p > i:
			units = append(units, []int{i, p})
		}
	}
	return units
}

// benchBlock is one block of a unit: stanzas start..end-1 of its stream s.
type benchBlock struct{ s, start, end int }

// benchSchedule returns the blocks of a unit (one stream, or the two
// directions of a session) in the order they cross. A stream alone is cut
// into batches of batch stanzas. A session's stanzas are taken in the
// order compress.Interleave gives, and a block of a stream goes as soon as
// batch of that stream's stanzas are taken; at the end each stream's last,
// partial block goes, the one whose first stanza was taken earlier first.
func benchSchedule(st [][][]byte, batch int) []benchBlock {
	var out []benchBlock
	if len(st) == 1 {
		for i := 0; i < len(st[0]); i += batch {
			out = append(out, benchBlock{0, i, min(i+batch, len(st[0]))})
		}
		return out
	}
	var taken, start, first [2]int
	for k, s := range compress.Interleave(st[0], st[1]) {
		if taken[s] == start[s] {
			first[s] = k
		}
		taken[s]++
		if taken[s]-start[s] == batch {
			out = append(out, benchBlock{int(s), start[s], taken[s]})
			start[s] = taken[s]
		}
	}
	order := [2]int{0, 1}
	if first[1] < first[0] {
		order = [2]int{1, 0}
	}
	for _, s := range order {
		if start[s] < taken[s] {
			out = append(out, benchBlock{s, start[s], taken[s]})
		}
	}
	return out
}

// unitCodecs returns an encoder for each stream of a unit and the decoder
// at its other end. For a session, the two ends are wired as two gateways
// are (link/session_dict.go; newGateway in compress/echo_test.go): each
// end's encoder logs the ids it sends and echoes ids from what its decoder
// received, and each end's decoder logs what it receives and resolves the
// peer's echoes from what its encoder sent. Stream 0 goes from end A to
// end B: enc[0] and dec[1] are A's, enc[1] and dec[0] are B's.
func unitCodecs(n int, opts []compress.Option) ([]*compress.Encoder, []*compress.Decoder, error) {
	enc := make([]*compress.Encoder, n)
	dec := make([]*compress.Decoder, n)
	for s := range n {
		var err error
		if enc[s], err = compress.NewEncoder(opts...); err != nil {
			return nil, nil, err
		}
		if dec[s], err = compress.NewDecoder(opts...); err != nil {
			for _, d := range dec[:s] {
				d.Close()
			}
			return nil, nil, err
		}
	}
	if n == 2 {
		sent := [2]*compress.IDLog{compress.NewIDLog(), compress.NewIDLog()} // sent[s]: stream s's ids as its encoder wrote them
		recv := [2]*compress.IDLog{compress.NewIDLog(), compress.NewIDLog()} // recv[s]: ...as its decoder read them
		for s := range 2 {
			o := 1 - s
			enc[s].LogIDs(sent[s])
			enc[s].EchoIDs(recv[o]) // this end's received log
			dec[s].LogIDs(recv[s])
			dec[s].EchoIDs(sent[o]) // that end's sent log
		}
	}
	return enc, dec, nil
}

// benchUnit runs every method over a unit's streams in the blocks of
// sched, adds up the bytes, and decodes each isthmus block at the other end
// before the next block is encoded (as the link would: a gateway's encoder
// echoes only ids its decoder has read) and checks each stanza against its
// input: identical bytes, or the same infoset (the documented
// canonicalization). It returns the isthmus blocks in sched's order.
func benchUnit(rep *benchReport, files []benchFile, u []int, sched []benchBlock, opts []compress.Option, dict []byte) ([][]byte, error) {
	enc, dec, err := unitCodecs(len(u), opts)
	if err != nil {
		return nil, err
	}
	sb := make([]*streamBench, len(u))
	defer func() {
		for s := range u {
			dec[s].Close()
			if sb[s] != nil {
				sb[s].close()
			}
		}
	}()
	for s := range u {
		if sb[s], err = newStreamBench(dict); err != nil {
			return nil, err
		}
	}
	blocks := make([][]byte, 0, len(sched))
	for _, bl := range sched {
		path := files[u[bl.s]].path
		in := files[u[bl.s]].st[bl.start:bl.end]
		block, err := enc[bl.s].Encode(in)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: isthmus: batch at stanza %d: %w", path, bl.start, err)
		}
		if err := sb[bl.s].add(rep, bl.start, in, block, enc[bl.s]); err != nil {
			return nil, err
		}
		block = bytes.Clone(block)
		blocks = append(blocks, block)
		out, err := dec[bl.s].Decode(block)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: decoding batch at stanza %d: %w", path, bl.start, err)
		}
		if len(out) != len(in) {
			return nil, fmt.Errorf("bench: %s: batch at stanza %d: %d stanzas decoded, want %d", path, bl.start, len(out), len(in))
		}
		for j := range in {
			switch {
			case bytes.Equal(out[j], in[j]):
				rep.Identical++
			case compress.EqualInfoset(out[j], in[j]):
			default:
				return nil, fmt.Errorf("bench: %s: stanza %d decoded differently:\n in: %s\nout: %s", path, bl.start+j, in[j], out[j])
			}
			rep.Verified++
		}
	}
	for _, e := range enc {
		rep.Echoed += e.Echoed()
	}
	return blocks, nil
}

// streamBench is one stream's zlib and zstd streams (the baselines, one
// each per stream as XEP-0138 and a streaming zstd would run them) and its
// shadows.
type streamBench struct {
	zb, sb  bytes.Buffer
	zw      *zlib.Writer
	sw      *zstd.Encoder
	sh      *shadows
	weights map[string][]float64
}

func newStreamBench(dict []byte) (*streamBench, error) {
	x := &streamBench{weights: map[string][]float64{}}
	var err error
	if x.zw, err = zlib.NewWriterLevel(&x.zb, 6); err != nil {
		return nil, err
	}
	if x.sw, err = zstd.NewWriter(&x.sb, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compress.WindowSize), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true)); err != nil {
		return nil, err
	}
	if x.sh, err = newShadows(dict); err != nil {
		x.sw.Close()
		return nil, err
	}
	return x, nil
}

func (x *streamBench) close() {
	x.sw.Close()
	x.sh.close()
}

// add counts the batch b, stanzas i.. of the stream, that enc has just
// encoded into block: the other methods compress it too, and each block's
// bytes are shared among its stanzas (per-kind and cold-start figures; see
// shareBlock).
func (x *streamBench) add(rep *benchReport, i int, b [][]byte, block []byte, enc *compress.Encoder) error {
	raw := 0
	for _, s := range b {
		raw += len(s)
	}
	x.zb.Reset()
	for _, s := range b {
		x.zw.Write(s)
	}
	if err := x.zw.Flush(); err != nil {
		return err
	}
	x.sb.Reset()
	for _, s := range b {
		x.sw.Write(s)
	}
	if err := x.sw.Flush(); err != nil {
		return err
	}
	if err := x.sh.weigh(x.weights, b, enc); err != nil {
		return err
	}
	sizes := map[string]int{"raw": raw, "zlib": x.zb.Len(), "zstd": x.sb.Len(), "isthmus": len(block)}
	for name, n := range sizes {
		m := rep.Methods[name]
		if m.kindFloats == nil {
			m.kindFloats = map[string]float64{}
			m.classFloat = map[string]float64{}
		}
		m.Bytes += int64(n)
		for j, share := range shareBlock(n, x.weights[name], b) {
			m.kindFloats[compress.Kind(b[j])] += share
			m.classFloat[stanzaClass(b[j])] += share
			if i+j < coldN {
				m.coldFloat += share
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

// timeIsthmus measures encoding and decoding of one unit on one core, the
// best of a few passes: every block of sched encoded, then every block
// decoded, in sched's order. A session's two encoders echo from each
// other's sent log, and its two decoders resolve from each other's
// received log: the same ids in the same order as the gateways' own logs
// (benchUnit), since a decoder logs exactly the ids its peer's encoder
// logged; the blocks must come out as benchUnit's (want).
func timeIsthmus(st [][][]byte, sched []benchBlock, want [][]byte, opts []compress.Option) (enc, dec time.Duration, err error) {
	blocks := make([][]byte, len(sched))
	enc, dec = time.Duration(1<<62), time.Duration(1<<62)
	for pass := 0; pass < 5; pass++ {
		es := make([]*compress.Encoder, len(st))
		ds := make([]*compress.Decoder, len(st))
		logs := make([]*compress.IDLog, len(st))
		for s := range st {
			if es[s], err = compress.NewEncoder(opts...); err != nil {
				return 0, 0, err
			}
			logs[s] = compress.NewIDLog()
		}
		if len(st) == 2 {
			for s := range 2 {
				es[s].LogIDs(logs[s])
				es[s].EchoIDs(logs[1-s])
			}
		}
		runtime.GC()
		t0 := time.Now()
		for k, bl := range sched {
			b, err := es[bl.s].Encode(st[bl.s][bl.start:bl.end])
			if err != nil {
				return 0, 0, err
			}
			blocks[k] = bytes.Clone(b)
		}
		enc = min(enc, time.Since(t0))
		for k := range blocks {
			if !bytes.Equal(blocks[k], want[k]) {
				return 0, 0, fmt.Errorf("timing pass: block %d (stream %d, stanza %d) encoded to other bytes than the measured run", k, sched[k].s, sched[k].start)
			}
		}
		for s := range st {
			if ds[s], err = compress.NewDecoder(opts...); err != nil {
				return 0, 0, err
			}
			logs[s] = compress.NewIDLog()
		}
		if len(st) == 2 {
			for s := range 2 {
				ds[s].LogIDs(logs[s])
				ds[s].EchoIDs(logs[1-s])
			}
		}
		t0 = time.Now()
		for k, bl := range sched {
			if _, err := ds[bl.s].Decode(blocks[k]); err != nil {
				return 0, 0, err
			}
		}
		dec = min(dec, time.Since(t0))
		for _, d := range ds {
			d.Close()
		}
	}
	return enc, dec, nil
}

func printBench(w io.Writer, rep *benchReport) {
	echo := fmt.Sprintf("%d file(s) paired into %d session(s), %d ids and values echoed", rep.PairedFiles, len(rep.Sessions), rep.Echoed)
	if rep.NoEcho {
		echo = "no sessions (--no-echo)"
	}
	fmt.Fprintf(w, "%d stanzas from %d file(s), batch %d; %s; bytes per stanza (per-kind figures share each block by each stanza's compressed bytes)\n\n", rep.Stanzas, len(rep.Files), rep.Batch, echo)
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
	cold := rep.ColdCount
	fmt.Fprintf(w, "cold start: first %d stanzas of each stream %.1f B/stanza (zlib %.1f), whole run %.1f B/stanza\n",
		rep.ColdN, float64(is.ColdBytes)/float64(cold), float64(rep.Methods["zlib"].ColdBytes)/float64(cold), float64(is.Bytes)/float64(rep.Stanzas))
	for _, p := range rep.Sessions {
		fmt.Fprintf(w, "session: %s <-> %s\n", p[0], p[1])
	}
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
