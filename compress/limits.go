package compress

import (
	"errors"
	"fmt"
)

// Version is the codec's wire version (see the package doc): blocks,
// structural form, vocabulary and limits. Both ends must speak the same;
// the link checks it in HELLO. Any change to vocab, to a table size or
// limit below, or to the format bumps it.
const Version = 7

// The limits of the codec, in one place: the encoder and the decoder read
// the same constants, and the encoder never writes a block the decoder
// refuses (it carries a stanza whose structure is outside them byte for
// byte, and refuses, with an *UnencodableError, a stanza or batch no form
// can carry). They are part of the wire format (Version).
const (
	// WindowSize is the zstd window: how far back the stream context reaches.
	WindowSize = 1 << 22
	// MaxStanzaSize bounds one stanza in a block, as sent and as decoded.
	MaxStanzaSize = 16 << 20
	// MaxBatchStanzas bounds the stanzas in one block.
	MaxBatchStanzas = 1 << 16
	// MaxBatchBytes bounds the XML one block decodes to (a decoder may be
	// given a lower bound: WithMaxDecoded).
	MaxBatchBytes = 64 << 20
)

// Sizes of the mirrored tables and limits of the structural form.
const (
	valueSlots    = 1024 // interned attribute and text values
	bareSlots     = 1024 // bare JIDs (local@domain or domain)
	resourceSlots = 1024 // JID resources
	nameSlots     = 256  // element and attribute names missing from vocab
	ringSize      = 256  // recent id attribute values
	maxInterned   = 256  // longest string a table holds, and longest element or attribute name carried structurally
	internMax     = 64   // longest generic value the encoder interns
	maxDepth      = 64   // deepest element nesting carried structurally
	shapeSlots    = 512  // stanza shapes (full forms with the values cut out)
	shapeMax      = 1024 // longest shape kept
	pairSlots     = 1024 // (from, to) pairs of root elements other than presence
	// Templates: a stanza sent again to another recipient (a presence
	// fanned out to every contact, the same probe to each) crosses as a
	// slot number and its new 'to'.
	templateSlots = 256  // FIFO of stanzas kept as templates
	templateMax   = 4096 // longest stanza kept as a template (decoded bytes)
)

// ErrCorrupt is wrapped by every decoding error caused by the block's bytes.
var ErrCorrupt = errors.New("compress: corrupt block")

// ErrUnencodable is wrapped by the *UnencodableError Encode and Check
// return for a stanza or batch outside the codec's limits. Nothing has been
// written when it is returned: the encoder's state is as before the call.
var ErrUnencodable = errors.New("compress: unencodable")

// Names of the limits an UnencodableError reports.
const (
	LimitStanzaSize  = "max_stanza_size" // a stanza longer than MaxStanzaSize
	LimitDecoded     = "max_decoded"     // one stanza decodes to more than the decoder's bound
	LimitBatchDecode = "max_batch_bytes" // the batch up to this stanza decodes to more than the decoder's bound
)

// UnencodableError says which stanza of a batch is outside which limit.
type UnencodableError struct {
	Index int    // the stanza's index in the batch
	Limit string // one of the Limit* names
	Value int    // its size (for LimitBatchDecode: the batch's up to and including it)
	Max   int    // the limit's value
}

func (e *UnencodableError) Error() string {
	return fmt.Sprintf("compress: stanza %d unencodable: %s: %d bytes, limit %d", e.Index, e.Limit, e.Value, e.Max)
}

func (e *UnencodableError) Unwrap() error { return ErrUnencodable }

// Batch reports whether the stanza fits alone and only the batch is too
// big: the stanzas before it can go in one block, it in the next.
func (e *UnencodableError) Batch() bool { return e.Limit == LimitBatchDecode }

// DecodedSize returns the number of bytes st decodes to, or an
// *UnencodableError when no block can carry it. It reads only st: it is
// what an S2S ingress asks to bounce a stanza the link could not carry.
func DecodedSize(st []byte) (int, error) {
	var p parser
	return decodedSize(&p, st)
}

// Check reports whether the codec carries st (see DecodedSize); it does
// whatever st's content when st is at most MaxStanzaSize bytes.
func Check(st []byte) error {
	_, err := DecodedSize(st)
	return err
}

// decodedSize is DecodedSize with the caller's parser, the rule
// structEncoder.stanza follows: a stanza crosses structurally when it
// parses and its canonical form is at most MaxStanzaSize, else raw.
func decodedSize(p *parser, st []byte) (int, error) {
	if len(st) > MaxStanzaSize {
		return 0, &UnencodableError{Limit: LimitStanzaSize, Value: len(st), Max: MaxStanzaSize}
	}
	if n, ok := structural(p, st); ok {
		return n, nil
	}
	return len(st), nil
}

// structural parses st into p and reports whether it crosses in the
// structural form, and its canonical (decoded) size if so.
func structural(p *parser, st []byte) (int, bool) {
	if !p.parse(st) {
		return 0, false
	}
	n := p.canonicalSize()
	return n, n <= MaxStanzaSize
}
