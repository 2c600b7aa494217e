// Package link is the reliable, ordered, compressed session between the two
// gateways of a pair, and its transports.
//
// The session (Session) is a pure state machine: frames and stanzas go in,
// frames and stanzas come out, time is passed in. Link drives it over one
// connection at a time from a read loop and a write loop, redials (or
// re-accepts) after a drop, and paces what it writes to the configured link
// rate so that queues form inside the gateway, not in the radio modem.
//
// # Transports
//
// TCP with TLS 1.3 (default), QUIC (quic-go) on one UDP socket, or
// datagrams (see below) (Config.Transport), both ends authenticated by the same pinned Ed25519 keys
// (see TLSConfig); ALPN "isthmus/1". The client keeps TLS session tickets, so
// a reconnect resumes without certificates crossing again (Stats.TLSResumes);
// QUIC also keeps address-validation tokens. No 0-RTT: a replayed first
// flight could take over the session from the live connection, and the
// client's first flight only carries HELLO anyway. QUIC runs with the
// configured handshake timeout, an idle timeout above DeadAfter, no QUIC
// keep-alive (ACKREQ does that), 1200-byte packets without path MTU probing,
// and a stateless reset key derived from the gateway key so that a
// restarted gateway resets the peer's old connection at once. quic-go cannot
// seed the RTT of a first connection, nor its first probe timer (200 ms
// before an RTT sample), nor its ack frequency (every second packet, or 25
// ms). Every QUIC datagram waits its turn at the link rate (the UDP/IP
// header counted) on a timer, without blocking quic-go, and one that would
// wait longer than a full-size packet's airtime is dropped before the air
// (Stats.QUICDrops): quic-go's bursts and probes queue in the gateway, not
// in the modem, and its first-flight probes do not pile up (see
// docs/measurements.md, "QUIC on slow links").
//
// The datagram transport (TransportDatagram, package link/dgram) carries
// the session in Noise-encrypted datagrams over Config.PacketConn between
// the same pinned keys, with its own acks and retransmission sized to the
// link rate. It has no connection: the session outlives outages and the
// peer's address changes, and only a gateway restart costs a handshake (57
// bytes one way, 49 the other; its timestamps, kept in Config.DatagramState,
// refuse a replayed one). A carrier that reports its link state
// (LinkStater) has the first queued stanza sent the moment the link
// returns. The Link sees one connection per Noise session; its
// write deadlines do not apply (a write waits while the link is down).
// Package link/dgram documents its wire format.
//
// Measured handshake, resumption, idle and drain costs per transport and
// link profile, and the commands that produce them, are in
// docs/measurements.md (figures rot in code comments; that page names the
// test that re-measures each).
//
// While draining, a backlog goes in full 16 KB batches at about 5× less
// than raw (32 msg/s on vhf-9600, 210 msg/s on bgan-64k). The reconnect
// part is the redial backoff (up to ReconnectMax after the link returns).
// A QUIC connection outlives a 10-minute outage (its idle timeout is above
// DeadAfter), but its probe timer has backed off meanwhile, so the first
// stanza waits for the next probe. A TCP connection through a path that
// silently drops everything (no reset from the modem) would wait the same
// way for its retransmission timer (backed off up to 120 s on Linux); the
// emulator does not model that (its Stall mode holds segments without
// timers), so the TCP rows are for a modem that drops carrier.
//
// The session's own resumption exchange is the two HELLOs: 36–40 link
// bytes without learned dictionaries (the epochs are random uvarints;
// each learned dictionary a HELLO names adds 8, see below), one round trip after the transport
// handshake (the accepting side sends its DATA right after the dialler's
// HELLO arrives; the dialler after the accepting side's HELLO). Measured
// from the end of the dialler's transport handshake to the peer's HELLO
// (Stats.HelloWait): TCP 0.183 s on vhf-9600 (1 RTT of 0.1 s plus the two
// records' serialization at 9600 bit/s), 0.713 s on bgan-64k (1.02 RTT).
// Over QUIC the accepting side's handshake ends later than the dialler's
// (tickets, tokens and connection ids go first): 1.24 s on bgan-64k (1.8
// RTT), and 7.8 s on vhf-9600, where the dialler's Finished waits behind
// Initials quic-go retransmitted on its 200 ms default timer.
//
// TCP is the default (the configuration has no notion of a link profile);
// measured side by side (docs/measurements.md, "Transports side by side";
// docs/deployment.md 3.1), the datagram transport costs least on every
// profile from vhf-9600 to geo-1m, TCP is the fallback where UDP cannot
// pass, and QUIC is recommended on none: its handshake costs 3.6–5.5× TCP's,
// it acknowledges nearly every packet with one of its own, and after an
// outage it waits for its backed-off probe timer.
//
// # Frames (protocol version 6)
//
// Everything inside TLS is a sequence of frames:
//
//	type    1 byte
//	length  uvarint in its shortest form (a longer one is refused), at most MaxFrameSize
//	payload length bytes
//
//	type  name     payload
//	0x01  HELLO    version (1 byte, =6) | flags (1 byte) | epoch uvarint | peerEpoch uvarint | h uvarint |
//	               codec uvarint | maxDecoded uvarint | [dict 8 bytes, flag 0x02] |
//	               (flags: 0x01 decoder lost, 0x02 dict, 0x04 encoder lost)
//	               n (1 byte, at most 4) | n × dictionary name (8 bytes)
//	0x02  DATA     ack uvarint | block (the rest)
//	0x03  ACK      ack uvarint
//
//	ack = h<<2 | (e & 3): h DATA frames of the peer's epoch e received
//	0x04  ACKREQ   (empty) — answer with ACK now; used as keepalive
//	0x05  EPOCH    epoch uvarint | [dict 8 bytes] — the sender's new send epoch starts here
//
// All counters are uint32 and wrap modulo 2^32, as XEP-0198's h does.
// Version history: 1, the first; 2 added the HELLO flags byte; 3 tags acks
// with the low two bits of the epoch they count; 4 added codec and
// maxDecoded to HELLO; 5 added learned dictionaries: HELLO's dict (flag
// 0x02) and list, EPOCH's dict (see "Learned dictionaries"); 6 couples
// the two directions' codecs (compress version 7, "Echoed ids"): an id
// one direction carried first (a message's, that a receipt names; an iq
// get's, that its result repeats) crosses the other way as a reference
// into a log of the ids each side sent and received. Each send epoch is a
// generation of the sender's log of sent ids, each peer epoch one of the
// receiver's log of received ids (Session.attachLogs). The log of sent ids
// keeps what the peer has not acknowledged (each sent frame records the
// log's length after it, and an ack releases all but the last echoWindow
// before it), so an echo the peer writes resolves however far ahead we
// run. HELLO flag 0x04 (encoder lost: the sender restarted from its spool
// and lost its encoder, and so its log of sent ids) tells the receiver to
// echo nothing of the sender's old epoch and not to resume frames that do;
// they are re-encoded in a new epoch. A reference to an id the receiver
// no longer holds fails the block like any corrupt one, and the sender
// starts a new epoch.
//
// codec is the sender's compress.Version: a HELLO with another is refused
// (ErrProtocol), so two builds whose codecs differ (vocabulary, tables,
// block format) stop at the handshake instead of misreading each other's
// blocks. maxDecoded is the most bytes of XML the sender's decoder takes
// from one DATA frame (SessionConfig.MaxDecoded, at least MinDecoded): its
// memory bound. The receiver's encoder keeps every batch within it (a
// stanza that alone exceeds it is taken out of its batch, counted in
// Drops.Unencodable and handed back; Enqueue refuses one bigger than it),
// so a frame is never sent that the peer would refuse.
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
//     (If nothing was sent in the current epoch yet, it simply continues.
//     If our HELLO was not written yet, it names the new epoch and no EPOCH
//     frame follows.) EPOCH is therefore the first frame after a HELLO and
//     comes at most once per connection; a receiver refuses any other
//     EPOCH as a protocol error (counted, connection dropped) before it
//     touches the decoder or the spool, and accepts as a no-op one that
//     repeats the epoch the HELLO just named (peers before this rule).
//   - if the HELLO has flag 0x01 (decoder lost: the peer restarted from its
//     spool, knowing h but not the decoder context), or we restarted and
//     lost our encoder, frames up to h are acknowledged and the rest are
//     re-encoded in a new epoch as above.
//
// DATA frames carry no sequence number: the n-th DATA frame of an epoch has
// sequence n (starting at 1), which both ends know because TCP and the resume
// rule above deliver each exactly once and in order. Each DATA frame carries
// one block of the codec in package compress (one batch of stanzas) and a
// piggy-backed cumulative ack: the number of DATA frames of the peer's current
// epoch received so far, tagged with that epoch's low two bits. A new epoch
// always differs from the one before in those bits, and a side ignores acks
// whose tag is not its current epoch's: when it starts a new epoch after the
// HELLOs, the peer's acks sent before it read the EPOCH frame still count
// the old epoch, and would otherwise acknowledge frames of the new one that
// the peer never received. A standalone ACK goes out only when the ack has been
// owed for AckDelay with no DATA to carry it, or at once after an ACKREQ.
// When nothing has been received for Keepalive (default 15 min), a side
// sends ACKREQ (the side with the smaller epoch waits 5/4 of it, so that
// an idle link carries one exchange per period, not one from each side); if nothing at all arrives for DeadAfter (2×Keepalive+1m),
// the connection is dropped and redialled (the session state survives; the
// next HELLO resumes it). The kernel's TCP keepalive is off (DialTCP,
// ListenTCP): its probes every 15 s would cost ~25 KB an hour.
//
// # Learned dictionaries
//
// An epoch's compression context starts primed with a zstd dictionary:
// the built-in one (compress.Dictionary), or one both gateways learned
// from this link's own recent traffic (Config.Learner, compress.Learner;
// the gateway's link.learn_dict_bytes), so that an epoch started after a
// restart costs about what the steady state does, on traffic the built-in
// dictionary never saw. A dictionary is named by the first 8 bytes of its
// SHA-256 (compress.HashDict); the zero name is the built-in one.
//
// Each direction learns on its own, at both ends, from the same stanzas
// in the same order: the sender records what the peer acknowledged (in
// the order sent), the receiver what it delivered, so both hold the same
// sample (the most recent stanzas up to the bound, each at most 8 KB, in
// the codec's canonical form: what a decoder gives back). Both train at
// the same stanzas (a cut: a quarter of the bound recorded since the last
// cut, the sample at least half the bound, and the stanza's FNV-1a hash 0
// mod 8; the rule depends only on the stanzas, so after the samples
// differed, e.g. a crash lost what was not saved, the cuts fall in step
// again and the dictionaries agree once the difference has left the
// sample), with compress.TrainDict on the sample in runs of 32 stanzas,
// which is deterministic: the same sample gives the same dictionary on
// both ends. Training runs on the learner's goroutine (58 ms for the
// default 512 KiB sample: BenchmarkLearnTrain in compress), never in the
// session loop, and so does canonicalizing what is recorded. Each
// direction keeps its newest two dictionaries, and saves its sample, cut
// state and dictionaries in the state directory (temporary file and
// rename; at each cut, every eighth of the bound and at shutdown), so a
// restarted gateway has what it had. A dictionary file that is missing or whose content does not
// match its name is left out, logged and counted (compress.LearnStats).
//
// On the wire: a HELLO lists the dictionaries its sender can decode with
// (learned from what it received), newest first, and names (flag 0x02)
// the one its own epoch is primed with; an EPOCH names the new epoch's
// (absent: the built-in one). An epoch's dictionary is chosen by its
// sender when the epoch starts, after the peer's HELLO: the newest of its
// own send dictionaries that the peer's HELLO lists, else the built-in
// one, so two ends that learned different dictionaries (one has learning
// off, a lost sample) fall back to the built-in one. The dictionaries are
// taken from the learner when a connection starts; an epoch keeps its
// dictionary for its whole life, across connections. A session's first
// epoch is named in its HELLO before the peer's HELLO is known, so it
// starts with the built-in one; if, on reading the peer's HELLO, nothing
// was sent in it yet and a learned dictionary both have is better, the
// sender starts a new epoch right away (EPOCH naming the dictionary):
// the first stanza after a restart already goes with it. The receiver
// primes the decoder of the peer's new epoch with the dictionary its
// HELLO or EPOCH names, looked up among those its own last HELLO listed
// (kept in memory until the next one, even if the learner has dropped
// them meanwhile) and those it has now; an epoch named in a HELLO and
// not begun (nothing decoded yet) takes the HELLO's dictionary. If the
// named dictionary is unknown, the receiver refuses the epoch's first
// DATA frame as a protocol error, counted in Session.DictErrors and
// logged (only a broken peer sends DATA with a dictionary it was not
// offered; a HELLO may name one the receiver has dropped meanwhile for an
// epoch the sender will replace, which costs nothing), and reports the
// decoder lost in its next HELLO: the sender starts another epoch, with
// a dictionary that HELLO lists, and resends.
//
// What it gains, on traffic the built-in dictionary never saw (the
// ejabberd-slixmpp captures in testdata/corpus, learned from the first
// half of each, measured on the second halves at batch 1; TestLearnedGain
// in compress): the first 32 stanzas of an epoch cost 31.9 B/stanza
// instead of 63.5 with the built-in dictionary, and the steady state 32.4
// instead of 38.2 (prosody-slixmpp: 79.8 instead of 151.4, and 34.6
// instead of 43.0).
//
// # Spool and restarts
//
// With Config.Journal (package link/spool) every accepted item is written to
// disk before Send returns, and the session's changes (frame n of epoch e
// carries items i…; frames up to n acknowledged; items dropped; frames of
// the peer received) are written before the frames they describe reach the
// socket, and before received stanzas are delivered. A restarted gateway
// resumes from it: its HELLO names the peer's epoch and h (decoder lost), its
// unacknowledged items are re-encoded in a new epoch after the peer's HELLO
// has acknowledged what it received. The receive count is on disk before a
// stanza is handed to the gateway, so a kill between the two can lose the
// stanzas of that one frame, never duplicate them.
//
// # Priorities and drops
//
// Items carry a Class: iq and message are sent before presence (a batch is
// filled from the high queue first, and takes presence only once the high
// queue is empty). A presence with a Coalesce key replaces a queued, not yet
// framed presence with the same key, in place (counted in Drops.Coalesced).
//
// Priorities never reorder one pair of entities (RFC 6120 §10.1): items
// carry a Pair key (the gateway uses "bare from|bare to"), and when a
// high-class item is queued, the queued presence of its pair moves to the
// high queue ahead of it, in order, and out of reach of coalescing, so a
// later presence cannot replace it. An item's Group is a second such key
// (the gateway uses "bare from|recipient domain", the Pair of the presence
// mirror's fan-out stanzas, so a message does not overtake its sender's
// presence carried in one). Stanzas re-encoded in a new epoch go
// ahead of everything queued in the order they were first sent; a restarted
// gateway queues its spooled items in acceptance order by the same rules. A
// presence replaces an older one in place only when that is the only queued
// presence of its pair; otherwise the older one is dropped and the newer one
// queued at the end. So what a pair's receiver gets is always a subsequence
// of what its sender handed over (presence coalescing being the only gaps).
//
// When the held bytes would exceed MaxQueueBytes, queued presence is dropped
// oldest first; if that is not enough, Send returns ErrQueueFull and the
// gateway bounces the stanza. One sender (the bare JID before the '|' of
// Item.Pair) may hold at most MaxSenderBytes (a quarter of MaxQueueBytes by
// default); beyond it Send returns ErrSenderFull, whatever room is left, so
// one user's flood while the link is down leaves the rest to the others.
// Queued items past their Expires (MaxAge,
// default 24h) are removed: iqs and messages are handed to Config.Expired
// (the gateway bounces them with remote-server-timeout), presence only
// counted. Items already framed are in flight and are not expired.
//
// # Batching and pacing
//
// Stanzas queue in the session. A batch closes when BatchWindow has passed
// since its first iq or message, or PresenceWindow (default 1 s, never less
// than BatchWindow) since its first stanza, whichever comes first: presence
// alone waits for company. It also closes when MaxBatchBytes are queued. The
// writer puts no more on the wire than RateBPS. Over TCP every estimated
// wire byte (below: handshakes, records with their TCP/IP headers, the pure
// ACKs this side returns) is fed, when counted, to a model of the modem, a
// serializer at RateBPS, and the writer writes only when that is idle, so
// the modem holds at most one write (Stats.ModemBacklog); over the other
// transports it waits after each write for that write's wire bytes to
// drain. Stanzas that arrive meanwhile join the next batch.
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
// and not counted; the emulator reports them separately (and with
// emu.Link.SetHeaders counts what occupied the link, headers, ACKs and
// retransmissions included). Stats.HandshakeOut/In are the wire bytes
// counted while no connection ran the session: the transport handshakes of
// the first connection and of every reconnection (TCP SYNs and TLS, QUIC
// before the session's stream).
package link
