package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Limits on what a decoder accepts; both ends use the same values.
const (
	// WindowSize is the zstd window: how far back the stream context reaches.
	WindowSize = 1 << 22
	// MaxStanzaSize bounds one stanza in a block.
	MaxStanzaSize = 16 << 20
	// MaxBatchStanzas bounds the stanzas in one block.
	MaxBatchStanzas = 1 << 16
)

// ErrCorrupt is wrapped by every decoding error caused by the block's bytes.
var ErrCorrupt = errors.New("compress: corrupt block")

type options struct {
	dict  []byte
	level zstd.EncoderLevel
}

// Option configures an Encoder or Decoder.
type Option func(*options)

// WithDict primes both ends with a zstd dictionary (as built by
// zstd.BuildDict). Both ends must use the same one.
func WithDict(dict []byte) Option { return func(o *options) { o.dict = dict } }

// WithLevel sets the encoder's zstd level (default SpeedBestCompression: the
// link, not the CPU, is the bottleneck).
func WithLevel(l zstd.EncoderLevel) Option { return func(o *options) { o.level = l } }

func collect(opts []Option) options {
	o := options{level: zstd.SpeedBestCompression}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Encoder turns batches into blocks. It is not safe for concurrent use.
type Encoder struct {
	opts options
	out  bytes.Buffer
	zw   *zstd.Encoder
	tmp  []byte
}

// NewEncoder returns an encoder at the start of an epoch.
func NewEncoder(opts ...Option) (*Encoder, error) {
	e := &Encoder{opts: collect(opts)}
	if err := e.Reset(); err != nil {
		return nil, err
	}
	return e, nil
}

// Reset starts a new epoch: the next block begins a new zstd stream.
func (e *Encoder) Reset() error {
	e.out.Reset()
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
	e.out.Reset()
	e.tmp = binary.AppendUvarint(e.tmp[:0], uint64(len(batch)))
	for _, st := range batch {
		if len(st) > MaxStanzaSize {
			return nil, fmt.Errorf("compress: stanza of %d bytes exceeds %d", len(st), MaxStanzaSize)
		}
		e.tmp = binary.AppendUvarint(e.tmp, uint64(len(st)))
		e.tmp = append(e.tmp, st...)
	}
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
	opts options
	in   blockReader
	zr   *zstd.Decoder
	err  error
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
	if err := d.Reset(); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset starts a new epoch.
func (d *Decoder) Reset() error {
	d.in.b = nil
	d.err = nil
	if d.zr != nil {
		d.zr.Close()
	}
	zo := []zstd.DOption{
		zstd.WithDecoderConcurrency(1), // synchronous: reads only what a block holds
		zstd.WithDecoderMaxMemory(64 << 20),
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
	d.in.b = block
	batch, err := d.decode()
	if err == nil && len(d.in.b) != 0 {
		err = fmt.Errorf("%w: %d bytes left after the batch", ErrCorrupt, len(d.in.b))
	}
	if err != nil {
		d.err = err
		return nil, err
	}
	return batch, nil
}

func (d *Decoder) decode() ([][]byte, error) {
	br := byteReader{d.zr}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: batch header: %v", ErrCorrupt, err)
	}
	if n == 0 || n > MaxBatchStanzas {
		return nil, fmt.Errorf("%w: batch of %d stanzas", ErrCorrupt, n)
	}
	batch := make([][]byte, 0, n)
	for i := uint64(0); i < n; i++ {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("%w: stanza %d length: %v", ErrCorrupt, i, err)
		}
		if l > MaxStanzaSize {
			return nil, fmt.Errorf("%w: stanza %d declares %d bytes", ErrCorrupt, i, l)
		}
		st := make([]byte, l)
		if _, err := io.ReadFull(d.zr, st); err != nil {
			return nil, fmt.Errorf("%w: stanza %d: %v", ErrCorrupt, i, err)
		}
		batch = append(batch, st)
	}
	return batch, nil
}

// Close releases the decoder's resources.
func (d *Decoder) Close() {
	if d.zr != nil {
		d.zr.Close()
	}
}

type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}
