// Package link is the reliable, ordered, compressed session between the two
// gateways of a pair, and its transports.
//
// The session (Session) is a pure state machine: frames and stanzas go in,
// frames and stanzas come out, time is passed in. Link drives it over one
// connection at a time from a read loop and a write loop, redials (or
// re-accepts) after a drop, and paces what it writes to the configured link
// rate so that queues form inside the gateway, not in the radio modem.
//
// # Transport
//
// TCP with TLS 1.3, both ends authenticated by pinned Ed25519 keys (see
// TLSConfig); ALPN "isthmus/1". The client keeps TLS session tickets, so a
// reconnect resumes without certificates crossing again.
//
// # Frames (protocol version 1)
//
// Everything inside TLS is a sequence of frames:
//
//	type    1 byte
//	length  uvarint, at most MaxFrameSize
//	payload length bytes
//
//	type  name     payload
//	0x01  HELLO    version (1 byte, =1) | epoch uvarint | peerEpoch uvarint | h uvarint
//	0x02  DATA     ack uvarint | block (the rest)
//	0x03  ACK      h uvarint
//	0x04  ACKREQ   (empty) — answer with ACK now; used as keepalive
//	0x05  EPOCH    epoch uvarint — the sender's new send epoch starts here
//
// All counters are uint32 and wrap modulo 2^32, as XEP-0198's h does.
//
// HELLO is the first frame each side sends on a new connection. epoch names
// the sender's current send stream (a random nonzero number, changed whenever
// the compression context restarts); peerEpoch and h say which of the
// receiver's epochs the sender has been decoding and how many DATA frames of
// it were received (0, 0 when it has none). Neither side sends DATA before it
// has the peer's HELLO. On receiving HELLO:
//
//   - if peerEpoch equals our epoch, the peer kept its decoder: frames up to
//     h are acknowledged and the rest of the unacknowledged frames are sent
//     again, byte for byte (resumption);
//   - otherwise the peer lost our stream (it restarted, or never saw it): we
//     start a new epoch (new random number, fresh compression context) and
//     re-encode every unacknowledged stanza, in order, ahead of newer ones;
//     since our HELLO already named the old epoch, an EPOCH frame precedes
//     the new epoch's first DATA and makes the receiver reset its decoder.
//     (If nothing was sent in the current epoch yet, it simply continues.)
//
// DATA frames carry no sequence number: the n-th DATA frame of an epoch has
// sequence n (starting at 1), which both ends know because TCP and the resume
// rule above deliver each exactly once and in order. Each DATA frame carries
// one block of the codec in package compress (one batch of stanzas) and a
// piggy-backed cumulative ack: the number of DATA frames of the peer's current
// epoch received so far. A standalone ACK goes out only when the ack has been
// owed for AckDelay with no DATA to carry it, or at once after an ACKREQ.
// When nothing has been received for Keepalive, a side sends ACKREQ; if
// nothing at all arrives for DeadAfter, the connection is dropped and
// redialled (the session state survives; the next HELLO resumes it).
//
// # Batching and pacing
//
// Stanzas queue in the session. A batch closes when BatchWindow has passed
// since its first stanza, or when MaxBatchBytes are queued. The writer puts
// no more on the wire than RateBPS: after each write it waits for the wire
// bytes of that write (estimated as below) to drain at the configured rate,
// and stanzas that arrive meanwhile join the next batch.
//
// # Byte accounting
//
// Per direction the session counts stanzas, link bytes (all frame bytes:
// type, length and payload, i.e. what the codec produced plus the session's
// own overhead) and the Link counts wire bytes: every byte TLS writes to the
// socket (records, handshakes, alerts: measured) plus an estimate of the
// TCP/IP headers: 52 bytes (IPv4 20 + TCP 20 + timestamps 12) per segment,
// where each socket write of n bytes is ceil(n/MSS) segments, plus one pure
// ACK segment for every two segments received (delayed ACK), plus SYN/FIN
// handshake segments per connection. The receiver's ACK segments are counted
// in the direction they travel. Retransmissions by TCP itself are not seen
// and not counted; the emulator reports them separately.
package link
