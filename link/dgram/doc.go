// Package dgram is the datagram transport's crypto and reliability: a Noise
// channel (Channel) and an ARQ (ARQ), both pure state machines (time passed
// in, bytes in and out) that package link drives over a Carrier (a UDP
// socket today; a STANAG 5066 SIS service or a serial modem could carry the
// same datagrams). Package link's Session runs on top unchanged: the ARQ
// gives it a reliable, ordered byte stream for as long as a Noise session
// lasts, which is as long as both gateways run: outages and address
// changes do not end it.
//
// # Keys and handshake
//
// Each gateway's X25519 static key is derived from its Ed25519 link key
// (KeysFromEd25519), so the pinned link.peer_key serves both TLS and Noise.
// The handshake is Noise_KK_25519_ChaChaPoly_BLAKE2s (github.com/flynn/noise)
// with prologue "isthmus datagram 1": both static keys are known in advance,
// the first message authenticates the initiator and the second the
// responder; one round trip, 57 bytes one way and 49 the other (162 on the
// wire both ways).
//
//	MsgInit  0x81 | e (32) | encrypted stamp (8, big-endian) | tag (16)
//	MsgResp  0x82 | e (32) | empty payload's tag (16)
//
// The stamp makes MsgInit fresh, as WireGuard's TAI64N timestamp does: it
// is the initiator's wall clock in nanoseconds since 1970, or one more than
// the last stamp it sent if the clock is not past that (Stamp). The
// responder refuses a MsgInit whose stamp is not above the largest it
// accepted from the peer (ErrStale, counted as link's StaleInits; no
// answer), so a recorded MsgInit replayed later, even to a gateway that has
// restarted since, opens nothing. Both stamps, the largest sent and the
// largest accepted, are kept in a state file (State; link.Config
// DatagramState, state_dir/datagram.state in a gateway), written durably
// before the MsgInit goes or the MsgResp is sent. A responder whose record
// is complete (it has the file, or it confirmed a handshake since it
// started) takes a fresh MsgInit at once: its session replaces the current
// one and its first transport datagram (the Session's HELLO) goes right
// behind MsgResp, so a restarted gateway's handshake and HELLO exchange take
// one round trip. A responder without a record (no state file, or one
// without an accepted stamp or of another peer, since its start) cannot
// tell a replay: it answers, but keeps the session pending
// until a transport datagram authenticates under it (one round trip more),
// and a replay costs one MsgResp and nothing else.
//
// The initiator sends MsgInit again, byte for byte, until answered (a
// repeated MsgInit gets the same MsgResp, while the session it made has
// heard nothing from the initiator); after three unanswered tries it makes
// a new one with a new stamp (the responder may have accepted the old stamp
// and restarted before answering). A gateway with the peer's address
// (link.dial) initiates when it starts; a gateway that receives transport
// datagrams no key of its opens, and has no session that has been hearing
// the peer, initiates towards their source (a restarted listening side).
// When both initiate at once, the handshake of the side with the larger
// static public key goes on: that side ignores the other's MsgInit but
// records its stamp as accepted (so a copy replayed later is stale). It
// defers only to a real crossing: its own handshake goes to the address
// the other's MsgInit came from, or has been sent fewer than two times; a
// handshake towards an address that never answers (a forged source, the
// peer's old address) does not make it ignore the peer for good.
//
// # Transport datagrams
//
//	byte 0   0 | P | N | A | D | S | R | M
//	         P: key phase; N: the packet number takes 2 bytes (else 1);
//	         A: an ack follows; D: a fragment follows; S: its sequence
//	         number takes 2 bytes (else 1); R: acknowledge at once;
//	         M: the ack has a mask (some datagrams are missing)
//	pn       1 or 2 bytes: the low bits of the packet number
//	ciphertext of:
//	  ack      (A) largest packet number received, low 16 bits |
//	           (M) uvarint mask, not 0: bit i set when largest-1-i was NOT
//	           received (i < 32); without M all 32 were received
//	  fragment (D) sequence number, low 8 or 16 bits | stream bytes to the end
//	tag      16 bytes (ChaCha20-Poly1305)
//
// Bytes 0 and pn are the AEAD's associated data; the nonce is the full
// 64-bit packet number, which starts at 0 for each session and counts every
// datagram sent, so no nonce repeats under a key. Truncated numbers are
// decoded against the largest received (RFC 9000 §A.3); the sender uses 1
// byte while fewer than 64 datagrams (fragments) are unacknowledged, and
// never lets 2^14 go unacknowledged. A transport datagram thus costs
// 1 + 1 + 16 bytes plus 2 for an ack (without losses) and 1 for a
// fragment's number: 21 bytes, 49 with the 28 bytes of IPv4 and UDP headers.
//
// The receiver keeps a replay window of 1024 packet numbers; older or
// repeated ones are dropped before decryption. Each side changes its send
// key every hour (or 2^20 datagrams) to the next key of Noise's REKEY
// (ENCRYPT(k, 2^64-1, "", zeros)) and flips P, once the peer has
// acknowledged a datagram under the current key (so the peer is never two
// keys behind); the receiver tries the next key when P flips, keeps it only
// if the datagram authenticates, and keeps the previous key two minutes for
// late datagrams. Traffic does not stop, and no bytes are added.
//
// # Reliability
//
// The stream the Session writes is cut into fragments of at most
// MTU − 28 bytes of datagram (link.DatagramMTU, 1200 by default); nothing
// waits for more data, and a frame larger than the MTU spans consecutive
// fragments that the receiver joins in order. A write that comes while the
// last fragment still waits for the pacer, and fits in it, joins it
// (ARQStats.Joined): it would have waited as long, and it saves a datagram
// (49 bytes on the wire). Fragments are delivered in sequence order, each
// once. Every datagram carrying a fragment (or R) is acknowledged: the ack
// rides on the next datagram with a fragment; it goes alone only when it has
// been owed for the ack delay (one MTU's serialization time at the link
// rate, within 500 ms..2 s) with nothing to carry it, or at once when a gap
// shows, a fragment comes twice, 16 datagrams are unacknowledged, or R asks.
//
// The Session's own ack (link.SessionConfig.AckDelay, 1 s) fires before
// the ARQ's on slow links and carries it. A longer Session ack delay (twice
// the ARQ's) helped sparse traffic (iridium-2400, a stanza every 3 s each
// way: raw ÷ wire 1.07 → 1.44 in link's TestDatagramFixedCost) but cost
// 5–8% on the demo's denser traffic (2 runs each), so it stays.
//
// A datagram the peer's ack reports missing (within its 32) or that falls
// below the ack's reach is lost, and its fragment goes again in a new
// datagram (a new packet number: no ambiguity for RTT samples). Without an
// ack, the retransmission timeout is the smoothed RTT plus four deviations
// (RFC 6298; 1 s assumed before the first sample) plus the ack delay plus
// the datagram's serialization time at the link rate. When it expires,
// everything in flight counts as lost and one probe goes per timeout (each
// with R, so without the ack delay in its timeout), doubling up to
// ARQConfig.MaxProbe (link.Config.DatagramMaxProbe, 10 s by default): the
// oldest lost fragment for the first two, then a datagram with only R (47
// bytes on the wire). Any authentic datagram from the peer sends the next
// probe at once; the first ack ends the backoff and the lost fragments go
// at the link rate. New fragments wait while nothing is acknowledged, so
// what queues during an outage stays in the Session, where it joins larger
// batches.
//
// A carrier that knows when its link returns (link.LinkStater: a modem's
// carrier detect, a STANAG 5066 link-up, the emulator) calls LinkUp: the
// next probe goes at once and carries the oldest unacknowledged fragment,
// lost or never sent, so the first stanza queued during an outage arrives
// one delay and its serialization time after the link's return (80 ms on
// vhf-9600, 840 ms on iridium-2400 after 10 minutes, link's
// TestDatagramIdleAndOutage), without a handshake. Over UDP the probes
// alone find the link; their cap trades bytes sent into an outage while
// data waits against the first stanza's delay after it (both sides, no
// loss, mean and worst of five outages, link's TestDatagramProbeCap):
//
//	cap   vhf-9600               iridium-2400
//	2 s   927 B/min  1.1/1.7 s   468 B/min  5.4/7.2 s
//	5 s   562 B/min  2.3/4.4 s   468 B/min  5.8/7.7 s
//	10 s  294 B/min  4.4/8.1 s   285 B/min  4.7/7.5 s
//	30 s  126 B/min  17/28 s     118 B/min  23/30 s
//
// Below a round trip and four deviations the cap has no effect (on
// iridium-2400 the probes stay about 6 s apart: the RTT samples include the
// peer's ack delay). Neither side probes when nothing of its own waits.
//
// Every datagram, acks and probes and handshake messages included, leaves
// at the link rate (link.rate_bps, counting the 28 bytes of IPv4 and UDP);
// the Link counts UDP payload + 28 bytes per datagram as wire bytes. A
// datagram with data holds the pacer at least as long as 196 bytes would
// take (link.DatagramMinWire, four times a datagram's fixed cost), but not
// more than half the smallest round trip measured (ARQ.MinRTT, which
// leaves out most of the peer's ack delay). Frames the Session writes
// meanwhile join the next datagram, so when frames queue, the 49 bytes
// around each are paid once per hold instead of once per frame; a lone
// frame on an idle link goes at once. On iridium-2400 (hold 653 ms) the
// demo's frames share datagrams about 1.9 to 1: over 5 minutes (seed 1,
// a→b/b→a) raw ÷ wire 7.48/7.79x and 26 B of fixed cost per frame, chat
// p50 1.94/1.80 s, against TCP's 6.34/6.61x and 2.07/1.81 s on the same
// run (2 minutes before the hold: 6.6/6.9x, 53 B per frame, p50
// 1.46/1.38 s). On vhf-9600 (RTT 100 ms) the cap makes the hold shorter
// than most datagrams and nothing changes (2 minutes: 4.74/5.07x, p50
// 154/153 ms, TCP's 159/153 ms). Sparse traffic (a frame every few
// seconds, link's TestDatagramFixedCost) has nothing to join: 49 B per
// frame plus the odd ack-only datagram and retransmission (52.6 B on
// iridium-2400 with 1% loss).
package dgram
