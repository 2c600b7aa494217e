package link

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// Frame types; see the package doc.
const (
	FrameHello  byte = 0x01
	FrameData   byte = 0x02
	FrameAck    byte = 0x03
	FrameAckReq byte = 0x04
	FrameEpoch  byte = 0x05
)

// Version is the link protocol version carried in HELLO.
const Version = 6

// MaxHelloDicts is the most dictionary names a HELLO may list.
const MaxHelloDicts = 4

// MinDecoded is the least MaxDecoded a HELLO may announce.
const MinDecoded = 1024

// HELLO flags.
const (
	// HelloDecoderLost: the sender restarted and knows how many DATA frames
	// of PeerEpoch it received (H) but no longer has the decoder context;
	// the receiver acknowledges frames up to H and starts a new epoch for
	// the rest.
	HelloDecoderLost byte = 1 << 0
	// HelloDict: Dict follows (Epoch is primed with a learned dictionary,
	// not the built-in one).
	HelloDict byte = 1 << 1
	// HelloEncoderLost: the sender restarted and lost the encoder of Epoch,
	// and with it the log of what it sent in Epoch: a new epoch follows,
	// and the receiver must not echo anything of Epoch meanwhile (nor
	// resume frames that do), since the sender cannot resolve it.
	HelloEncoderLost byte = 1 << 2
)

// MaxFrameSize bounds a frame's payload.
const MaxFrameSize = 4 << 20

// ErrProtocol is wrapped by every error caused by what the peer sent.
var ErrProtocol = errors.New("link: protocol error")

// Frame is one decoded frame.
type Frame struct {
	Type    byte
	Payload []byte
}

// AppendFrame appends the encoding of a frame to b.
func AppendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads one frame. The payload is a fresh slice.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return Frame{}, err
	}
	n, err := readLength(r)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: frame length: %v", ErrProtocol, eof(err))
	}
	if n > MaxFrameSize {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrProtocol, n, MaxFrameSize)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return Frame{}, fmt.Errorf("%w: frame payload: %v", ErrProtocol, eof(err))
	}
	return Frame{Type: typ, Payload: p}, nil
}

// errLongLength: a frame length not in its shortest form.
var errLongLength = errors.New("uvarint not in its shortest form")

// readLength reads a frame's length: a uvarint in its shortest form, the
// only one AppendFrame writes, so that each frame has one encoding. A
// longer form (0x80 0x00 for 0) is refused.
func readLength(r io.ByteReader) (uint64, error) {
	c := countBytes{r: r}
	n, err := binary.ReadUvarint(&c)
	if err == nil && c.n > 1 && c.last == 0 {
		err = errLongLength
	}
	return n, err
}

// countBytes counts the bytes read through it and keeps the last one.
type countBytes struct {
	r    io.ByteReader
	n    int
	last byte
}

func (c *countBytes) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
		c.last = b
	}
	return b, err
}

func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Hello is the payload of a HELLO frame.
type Hello struct {
	Version   byte
	Flags     byte   // HelloDecoderLost
	Epoch     uint32 // the sender's send epoch
	PeerEpoch uint32 // the receiver's epoch the sender has been decoding (0: none)
	H         uint32 // DATA frames of PeerEpoch received
	// Codec is the sender's compress.Version; MaxDecoded the most bytes of
	// XML the sender's decoder takes from one DATA frame (its
	// SessionConfig.MaxDecoded), which the receiver's encoder keeps to.
	Codec, MaxDecoded uint32
	// Dict names the dictionary Epoch is primed with (zero: the built-in
	// one; sent only with flag HelloDict). Dicts names the learned
	// dictionaries the sender can decode with, newest first (at most
	// MaxHelloDicts): the receiver primes its next epoch with the newest
	// of its own that is among them.
	Dict  compress.DictHash
	Dicts []compress.DictHash
}

// hello returns the HELLO this side sends.
func hello(flags byte, epoch, peerEpoch, h uint32, maxDecoded int) Hello {
	return Hello{Version: Version, Flags: flags, Epoch: epoch, PeerEpoch: peerEpoch, H: h, Codec: compress.Version,
		MaxDecoded: uint32(maxDecoded)}
}

// append encodes the HELLO (flag HelloDict set from Dict).
func (h Hello) append(b []byte) []byte {
	flags := h.Flags &^ HelloDict
	if !h.Dict.IsZero() {
		flags |= HelloDict
	}
	b = append(b, h.Version, flags)
	for _, v := range [...]uint32{h.Epoch, h.PeerEpoch, h.H, h.Codec, h.MaxDecoded} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	if !h.Dict.IsZero() {
		b = append(b, h.Dict[:]...)
	}
	b = append(b, byte(len(h.Dicts)))
	for _, d := range h.Dicts {
		b = append(b, d[:]...)
	}
	return b
}

// ParseHello decodes a HELLO payload.
func ParseHello(p []byte) (Hello, error) {
	if len(p) < 1 {
		return Hello{}, fmt.Errorf("%w: empty HELLO", ErrProtocol)
	}
	h := Hello{Version: p[0]}
	if h.Version != Version {
		return Hello{}, fmt.Errorf("%w: peer speaks link version %d, want %d", ErrProtocol, h.Version, Version)
	}
	if len(p) < 2 {
		return Hello{}, fmt.Errorf("%w: HELLO without flags", ErrProtocol)
	}
	h.Flags = p[1]
	rest := p[2:]
	var vals [5]uint32
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 || v > 0xffffffff {
			return Hello{}, fmt.Errorf("%w: bad HELLO field %d", ErrProtocol, i)
		}
		vals[i], rest = uint32(v), rest[n:]
	}
	if h.Flags&HelloDict != 0 {
		if len(rest) < len(h.Dict) {
			return Hello{}, fmt.Errorf("%w: HELLO dictionary name cut short", ErrProtocol)
		}
		h.Dict, rest = compress.DictHash(rest), rest[len(h.Dict):]
		if h.Dict.IsZero() {
			return Hello{}, fmt.Errorf("%w: HELLO names the zero dictionary", ErrProtocol)
		}
	}
	if len(rest) < 1 || int(rest[0]) > MaxHelloDicts || len(rest) < 1+8*int(rest[0]) {
		return Hello{}, fmt.Errorf("%w: bad HELLO dictionary list", ErrProtocol)
	}
	for i := range int(rest[0]) {
		h.Dicts = append(h.Dicts, compress.DictHash(rest[1+8*i:]))
	}
	rest = rest[1+8*len(h.Dicts):]
	if len(rest) != 0 {
		return Hello{}, fmt.Errorf("%w: %d trailing bytes in HELLO", ErrProtocol, len(rest))
	}
	h.Epoch, h.PeerEpoch, h.H, h.Codec, h.MaxDecoded = vals[0], vals[1], vals[2], vals[3], vals[4]
	if h.Epoch == 0 {
		return Hello{}, fmt.Errorf("%w: HELLO with epoch 0", ErrProtocol)
	}
	if h.Codec != compress.Version {
		return Hello{}, fmt.Errorf("%w: peer speaks codec version %d, want %d", ErrProtocol, h.Codec, compress.Version)
	}
	if h.MaxDecoded < MinDecoded {
		return Hello{}, fmt.Errorf("%w: peer decodes at most %d bytes a frame, want at least %d", ErrProtocol, h.MaxDecoded, MinDecoded)
	}
	return h, nil
}

// appendAck appends the ack field of ACK and DATA frames: h, the DATA
// frames of the peer's epoch received, tagged with that epoch's low two
// bits (see the package doc).
func appendAck(b []byte, h, epoch uint32) []byte {
	return binary.AppendUvarint(b, uint64(h)<<2|uint64(epoch&3))
}

// parseAck decodes the leading ack field of ACK and DATA payloads.
func parseAck(p []byte, what string) (h uint32, tag uint32, rest []byte, err error) {
	v, n := binary.Uvarint(p)
	if n <= 0 || v>>2 > 0xffffffff {
		return 0, 0, nil, fmt.Errorf("%w: bad %s counter", ErrProtocol, what)
	}
	return uint32(v >> 2), uint32(v & 3), p[n:], nil
}

// appendEpoch encodes an EPOCH payload: the new epoch, and the learned
// dictionary it is primed with (none: the built-in one).
func appendEpoch(b []byte, epoch uint32, dict compress.DictHash) []byte {
	b = binary.AppendUvarint(b, uint64(epoch))
	if !dict.IsZero() {
		b = append(b, dict[:]...)
	}
	return b
}

// parseEpoch decodes an EPOCH payload.
func parseEpoch(p []byte) (epoch uint32, dict compress.DictHash, err error) {
	e, rest, err := parseCounter(p, "EPOCH")
	switch {
	case err != nil || e == 0:
		return 0, dict, fmt.Errorf("%w: bad EPOCH", ErrProtocol)
	case len(rest) == len(dict):
		dict = compress.DictHash(rest)
		if dict.IsZero() {
			return 0, dict, fmt.Errorf("%w: EPOCH names the zero dictionary", ErrProtocol)
		}
	case len(rest) != 0:
		return 0, dict, fmt.Errorf("%w: bad EPOCH: %d bytes after the epoch", ErrProtocol, len(rest))
	}
	return e, dict, nil
}

// parseCounter decodes a leading uvarint counter.
func parseCounter(p []byte, what string) (uint32, []byte, error) {
	v, n := binary.Uvarint(p)
	if n <= 0 || v > 0xffffffff {
		return 0, nil, fmt.Errorf("%w: bad %s counter", ErrProtocol, what)
	}
	return uint32(v), p[n:], nil
}
