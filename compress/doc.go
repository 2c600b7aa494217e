// Package compress is the isthmus stanza codec: it turns ordered batches of
// serialized stanzas into compact blocks for the link, and back.
//
// # Block format (codec "zstd-stream", version 1)
//
// Within one epoch the encoder keeps a single zstd stream (klauspost/compress)
// open: every batch is appended to it and the stream is flushed, so each block
// is the bytes that one flush produced and the compression context (the zstd
// window, up to WindowSize) runs across blocks. The decoder therefore must see
// every block of an epoch, in order, exactly once: the link session guarantees
// that, and starts a new epoch (Reset on both ends) when a peer lost its state.
//
// Inside the zstd stream, a batch is
//
//	uvarint(n)                       number of stanzas, 1..MaxBatchStanzas
//	n × ( uvarint(len) , len bytes ) each stanza's XML as it appears in a
//	                                 jabber:server stream
//
// Sizes declared by the peer are checked against MaxStanzaSize and
// MaxBatchStanzas before anything is allocated, and the zstd decoder is
// limited with WithDecoderMaxMemory, so a hostile block cannot exhaust memory.
//
// The structural codec (mirrored interning tables, binary ids, a trained
// dictionary) plugs in here later behind the same Encoder/Decoder API; a
// dictionary can already be supplied with WithDict.
package compress
