package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Block modes (first byte of a block).
const (
	modePlain = 0    // uvarint(n), then the batch's structural form, outside the zstd stream
	modeZstd  = 1    // the bytes one flush of the epoch's zstd stream produced
	modeZstd1 = 2    // the same for a batch of one stanza (its count is not sent)
	modeOne   = 0x80 // bit set: a block of one stanza, outside the zstd stream, whose flags byte is this byte without the bit
	// Short zstd modes (version 6): modeZstd and modeZstd1 with the
	// decoded size (in sizeUnit, at least 1) in the mode byte's low bits
	// instead of a uvarint after it, when it fits: one byte less a block.
	modeZstdS  = 0x20 // | units (1..31): as modeZstd
	modeZstd1S = 0x40 // | units (1..63): as modeZstd1
	// A batch goes plain when its structural form, less its ids and
	// hashes in binary (random to zstd), is at most plainMax bytes: a zstd
	// block costs more than it saves there.
	plainMax = 24
)

type options struct {
	dict       []byte
	dictSet    bool
	level      zstd.EncoderLevel
	maxDecoded int
}

// Option configures an Encoder or Decoder.
type Option func(*options)

// WithDict primes both ends with a zstd dictionary (as built by
// zstd.BuildDict or TrainDict) instead of the embedded one; nil means no
// dictionary. Both ends must use the same one.
func WithDict(dict []byte) Option { return func(o *options) { o.dict, o.dictSet = dict, true } }

// WithLevel sets the encoder's zstd level (default SpeedBetterCompression: as
// link, not the CPU, is the bottleneck).
func WithLevel(l zstd.EncoderLevel) Option { return func(o *options) { o.level = l } }

// WithMaxDecoded bounds the XML one block may decode to (default and at
// most MaxBatchBytes): a decoder refuses a block that would decode to more,
// before decoding it, so its memory is bounded by n, not by what the peer
// sends; an encoder refuses a batch that would (UnencodableError), so it
// must be given the peer decoder's bound (SetMaxDecoded).
func WithMaxDecoded(n int) Option { return func(o *options) { o.maxDecoded = n } }

func collect(opts []Option) options {
	o := options{level: zstd.SpeedBetterCompression, maxDecoded: MaxBatchBytes}
	for _, f := range opts {
		f(&o)
	}
	if !o.dictSet {
		o.dict = Dictionary()
	}
	if len(o.dict) == 0 {
		o.dict = nil
	}
	o.maxDecoded = clampDecoded(o.maxDecoded)
	return o
}

// Encoder turns batches into blocks. It is not safe for concurrent use.
type Encoder struct {
	opts options
	out  bytes.Buffer
	zw   *zstd.Encoder
	tmp  []byte
	st   structEncoder
	// The last batch, for LastBatch: where each stanza's part ends (in
	// st.out, or in tmp when the batch went through zstd).
	ends []int
	zstd bool
}

// LastBatch describes the batch the last successful Encode wrote, for
// accounting (`isthmus bench`): payload is what went into the epoch's zstd
// stream (zstd true: the batch header, then each stanza's structural form)
// or what the block carries after its header outside the stream (zstd
// false: the stanzas' structural forms); stanza i's part of payload ends
// at ends[i] (the header counts with stanza 0). Valid until the next call.
func (e *Encoder) LastBatch() (payload []byte, ends []int, zstd bool) {
	if !e.zstd {
		return e.st.out, e.ends, false
	}
	return e.tmp, e.ends, true
}

// NewEncoder returns an encoder at the start of an epoch.
func NewEncoder(opts ...Option) (*Encoder, error) {
	e := &Encoder{opts: collect(opts)}
	e.st.t = newTables(true)
	if err := e.Reset(); err != nil {
		return nil, err
	}
	return e, nil
}

func clampDecoded(n int) int {
	if n <= 0 || n > MaxBatchBytes {
		return MaxBatchBytes
	}
	return n
}

// SetMaxDecoded changes the bound on what one block may decode to (see
// WithMaxDecoded) for the batches encoded from now on: the peer decoder's,
// which may change when the peer restarts.
func (e *Encoder) SetMaxDecoded(n int) { e.opts.maxDecoded = clampDecoded(n) }

// Reset starts a new epoch: the next block begins a new zstd stream and the
// mirrored tables start empty.
func (e *Encoder) Reset() error {
	e.out.Reset()
	e.st.t.reset()
	zo := []zstd.EOption{
		zstd.WithEncoderLevel(e.opts.level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(WindowSize),
		zstd.WithEncoderCRC(false), // the link is TLS-authenticated
		zstd.WithZeroFrames(true),
	}
	if e.opts.dict != nil {
		zo = append(zo, zstd.WithEncoderDict(e.opts.dict))
	}
	if e.zw == nil {
		zw, err := zstd.NewWriter(&e.out, zo...)
		if err != nil {
			return fmt.Errorf("compress: new encoder: %w", err)
		}
		e.zw = zw
		return nil
	}
	e.zw.Reset(&e.out)
	return nil
}

// Encode appends one batch to the stream and returns the block that carries
// it. The returned slice is valid until the next call.
func (e *Encoder) Encode(batch [][]byte) ([]byte, error) {
	if len(batch) == 0 || len(batch) > MaxBatchStanzas {
		return nil, fmt.Errorf("compress: batch of %d stanzas (want 1..%d)", len(batch), MaxBatchStanzas)
	}
	// Every limit is checked before anything is written: the tables
	// advance only for a batch that goes out whole.
	total := 0
	e.st.begin()
	for i, st := range batch {
		n, err := e.st.check(st)
		if err != nil {
			ue := err.(*UnencodableError)
			ue.Index = i
			return nil, ue
		}
		if n > e.opts.maxDecoded {
			return nil, &UnencodableError{Index: i, Limit: LimitDecoded, Value: n, Max: e.opts.maxDecoded}
		}
		if total += n; total > e.opts.maxDecoded {
			return nil, &UnencodableError{Index: i, Limit: LimitBatchDecode, Value: total, Max: e.opts.maxDecoded}
		}
	}
	e.out.Reset()
	e.st.out = e.st.out[:0]
	e.st.rnd = 0
	e.st.echoMinSet = false
	e.ends = e.ends[:0]
	e.st.cur = 0
	for _, st := range batch {
		e.st.stanza(st)
		e.ends = append(e.ends, len(e.st.out))
	}
	e.zstd = len(e.st.out)-e.st.rnd > plainMax
	if !e.zstd {
		// Too small for zstd to win: send the tokens as they are, outside
		// the zstd stream.
		if len(batch) == 1 {
			e.tmp = append(e.tmp[:0], e.st.out...)
			e.tmp[0] |= modeOne
			return e.tmp, nil
		}
		e.tmp = append(e.tmp[:0], modePlain)
		e.tmp = binary.AppendUvarint(e.tmp, uint64(len(batch)))
		e.tmp = append(e.tmp, e.st.out...)
		return e.tmp, nil
	}
	e.tmp = e.tmp[:0]
	mode := byte(modeZstd)
	if len(batch) == 1 {
		mode = modeZstd1
	} else {
		e.tmp = binary.AppendUvarint(e.tmp, uint64(len(batch)))
	}
	switch units := sizeUnits(total); {
	case mode == modeZstd1 && units < modeZstd1S:
		e.out.WriteByte(modeZstd1S | byte(units))
	case mode == modeZstd && units < modeZstdS:
		e.out.WriteByte(modeZstdS | byte(units))
	default:
		e.out.WriteByte(mode)
		var size [binary.MaxVarintLen64]byte
		e.out.Write(size[:binary.PutUvarint(size[:], uint64(units))])
	}
	e.tmp = binary.AppendUvarint(e.tmp, uint64(len(e.st.out)))
	for i := range e.ends {
		e.ends[i] += len(e.tmp)
	}
	e.tmp = append(e.tmp, e.st.out...)
	if _, err := e.zw.Write(e.tmp); err != nil {
		return nil, fmt.Errorf("compress: encoding: %w", err)
	}
	if err := e.zw.Flush(); err != nil {
		return nil, fmt.Errorf("compress: flushing: %w", err)
	}
	return e.out.Bytes(), nil
}

// Decoder turns blocks back into batches. It is not safe for concurrent use.
// After an error it stays failed until Reset.
type Decoder struct {
	opts    options
	in      blockReader
	zr      *zstd.Decoder
	err     error
	st      structDecoder
	payload bytes.Buffer
	one     []byte // a modeOne block with its flags byte restored
}

// blockReader hands the zstd decoder the bytes of the current block and
// reports io.ErrUnexpectedEOF (never a blocking wait) when a block ends
// before the batch it announced.
type blockReader struct{ b []byte }

func (r *blockReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// NewDecoder returns a decoder at the start of an epoch.
func NewDecoder(opts ...Option) (*Decoder, error) {
	d := &Decoder{opts: collect(opts)}
	d.st.t = newTables(false)
	if err := d.Reset(); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset starts a new epoch.
func (d *Decoder) Reset() error {
	d.in.b = nil
	d.err = nil
	d.st.t.reset()
	if d.zr != nil {
		d.zr.Close()
	}
	zo := []zstd.DOption{
		zstd.WithDecoderConcurrency(1), // synchronous: reads only what a block holds
		// Streaming: this bounds the window (as WithDecoderMaxWindow), so
		// zstd holds at most WindowSize of history and one block; what a
		// block decodes to is bounded by reading it through a LimitReader
		// of the length the batch declares.
		zstd.WithDecoderMaxMemory(WindowSize),
		zstd.WithDecoderMaxWindow(WindowSize),
		zstd.WithDecoderLowmem(true),
	}
	if d.opts.dict != nil {
		zo = append(zo, zstd.WithDecoderDicts(d.opts.dict))
	}
	zr, err := zstd.NewReader(&d.in, zo...)
	if err != nil {
		return fmt.Errorf("compress: new decoder: %w", err)
	}
	d.zr = zr
	return nil
}

// Decode returns the batch a block carries. The block must be the next one
// of the epoch. The returned stanzas are fresh slices owned by the caller.
func (d *Decoder) Decode(block []byte) ([][]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	batch, err := d.decode(block)
	if err != nil {
		d.err = err
		return nil, err
	}
	return batch, nil
}

func (d *Decoder) decode(block []byte) ([][]byte, error) {
	if len(block) == 0 {
		return nil, fmt.Errorf("%w: empty block", ErrCorrupt)
	}
	var n uint64
	limit := d.opts.maxDecoded // what the batch may decode to
	declared := -1             // what a zstd block says it decodes to, in sizeUnit
	d.st.out = nil
	switch {
	case block[0]&modeOne != 0:
		d.one = append(d.one[:0], block...)
		d.one[0] &^= modeOne
		n, d.st.in = 1, d.one
	case block[0] == modePlain:
		var k int
		n, k = binary.Uvarint(block[1:])
		if k <= 0 {
			return nil, fmt.Errorf("%w: batch header", ErrCorrupt)
		}
		d.st.in = block[1+k:]
	case block[0] == modeZstd || block[0] == modeZstd1 || block[0] >= modeZstdS:
		var err error
		if n, limit, err = d.zstdBatch(block); err != nil {
			return nil, err
		}
		declared = sizeUnits(limit)
	default:
		return nil, fmt.Errorf("%w: block mode %#x", ErrCorrupt, block[0])
	}
	if n == 0 || n > MaxBatchStanzas {
		return nil, fmt.Errorf("%w: batch of %d stanzas", ErrCorrupt, n)
	}
	d.st.pos, d.st.max = 0, limit
	ends := make([]int, 0, min(n, 1024))
	for i := uint64(0); i < n; i++ {
		if err := d.st.stanza(); err != nil {
			return nil, fmt.Errorf("stanza %d: %w", i, err)
		}
		if len(d.st.out) > limit {
			return nil, fmt.Errorf("%w: batch decodes to more than %d bytes", ErrCorrupt, limit)
		}
		ends = append(ends, len(d.st.out))
	}
	if d.st.pos != len(d.st.in) {
		return nil, fmt.Errorf("%w: %d bytes left in the batch", ErrCorrupt, len(d.st.in)-d.st.pos)
	}
	if declared >= 0 && sizeUnits(len(d.st.out)) != declared {
		return nil, fmt.Errorf("%w: batch decodes to %d bytes, declared %d×%d", ErrCorrupt, len(d.st.out), declared, sizeUnit)
	}
	out := d.st.out
	d.st.out = nil
	batch := make([][]byte, n)
	start := 0
	for i, end := range ends {
		batch[i] = out[start:end:end]
		start = end
	}
	return batch, nil
}

// zstdBatch reads the header of a zstd block (mode 1 or 2, or their short
// forms) and its batch's structural form into d.st.in. It returns the
// number of stanzas and the size the block declares (rounded up to
// sizeUnit, at most the decoder's bound). The decoded size comes first,
// outside the zstd stream: a block declaring more than the bound is refused
// before zstd runs.
func (d *Decoder) zstdBatch(block []byte) (n uint64, size int, err error) {
	var units uint64
	k := 0
	multi := block[0] == modeZstd
	switch b := block[0]; {
	case b >= modeZstd1S:
		units = uint64(b &^ modeZstd1S)
	case b >= modeZstdS:
		units, multi = uint64(b&^modeZstdS), true
	default:
		if units, k = binary.Uvarint(block[1:]); k <= 0 {
			return 0, 0, fmt.Errorf("%w: decoded size", ErrCorrupt)
		}
	}
	if units == 0 {
		return 0, 0, fmt.Errorf("%w: block mode %#x declares no decoded bytes", ErrCorrupt, block[0])
	}
	if units > uint64(sizeUnits(d.opts.maxDecoded)) {
		return 0, 0, fmt.Errorf("%w: block declares %d decoded bytes, limit %d", ErrCorrupt, units*sizeUnit, d.opts.maxDecoded)
	}
	size = min(int(units)*sizeUnit, d.opts.maxDecoded)
	d.in.b = block[1+k:]
	br := byteReader{d.zr}
	n = 1
	if multi {
		if n, err = binary.ReadUvarint(br); err != nil {
			return 0, 0, fmt.Errorf("%w: batch header: %v", ErrCorrupt, err)
		}
		if n == 0 || n > MaxBatchStanzas {
			return 0, 0, fmt.Errorf("%w: batch of %d stanzas", ErrCorrupt, n)
		}
	}
	l, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: batch length: %v", ErrCorrupt, err)
	}
	if l > maxStructural(uint64(size), n) {
		return 0, 0, fmt.Errorf("%w: batch declares %d structural bytes for %d decoded", ErrCorrupt, l, size)
	}
	d.payload.Reset()
	d.payload.Grow(int(l))
	if m, err := d.payload.ReadFrom(io.LimitReader(d.zr, int64(l))); err != nil || m != int64(l) {
		return 0, 0, fmt.Errorf("%w: batch of %d bytes: got %d: %v", ErrCorrupt, l, m, err)
	}
	if len(d.in.b) != 0 {
		return 0, 0, fmt.Errorf("%w: %d bytes left after the batch", ErrCorrupt, len(d.in.b))
	}
	d.st.in = d.payload.Bytes()
	d.st.out = make([]byte, 0, size)
	return n, size, nil
}

// Close releases the decoder's resources.
func (d *Decoder) Close() {
	if d.zr != nil {
		d.zr.Close()
	}
}

// A zstd block declares its decoded size in units of sizeUnit bytes,
// rounded up: one byte of header up to 32 KB (twice the link's default
// batch).
const sizeUnit = 256

func sizeUnits(n int) int { return (n + sizeUnit - 1) / sizeUnit }

// maxStructural bounds the structural form of n stanzas that decode to
// size bytes. A stanza's form is never more than twice its XML and a few
// bytes (raw: its bytes after a flags byte and their count; structural:
// each name, attribute and text item costs at most a few bytes more than
// its markup, which is at least as long); FuzzEncodeDecode holds the
// encoder to it.
func maxStructural(size, n uint64) uint64 { return 2*size + 16*n + 16 }

type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}
