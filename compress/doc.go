// Package compress is the isthmus stanza codec: it turns ordered batches of
// serialized stanzas into compact blocks for the link, and back.
//
// # Layers
//
//  1. Structure. Each stanza is parsed (parse.go) and written as a compact
//     structural form: element and attribute names and namespaces as codes
//     from a static table of the XMPP vocabulary (vocab.go, RFC 6120/6121
//     and the common XEPs), JIDs split into bare JID and resource and
//     interned, repeated values (caps ver and node, avatar hashes, status
//     texts) interned, ids, hashes and base64 content carried as binary
//     (UUIDs, hex, base64 of any length, also broken into lines as vCard
//     BINVAL is, random [A-Za-z0-9_-] ids at 6 bits a character, XEP-0082
//     timestamps as the difference in seconds from the previous
//     timestamp), recent ids
//     referenced by position (origin-id repeating the message id costs
//     nothing), the root's 'from' and 'to' of messages and iqs as one
//     reference to a recent (from, to) pair, a stanza that repeats a recent
//     one except for its 'to' (a presence fanned out to every contact) as a
//     template reference plus the new recipient (or no recipient at all when
//     it is the next contact in the order first seen), and a stanza whose
//     structure repeats a recent one's as a shape reference plus the values
//     that differ, without their type bytes.
//  2. Entropy. The structural form of a batch goes through one streaming
//     zstd context per epoch (klauspost/compress), flushed after each batch
//     and primed with a dictionary trained on captured traffic
//     (dict/isthmus.zdict, embedded; `make dict` rebuilds it with
//     TrainDict). A batch whose structural form, less the bytes of its ids
//     and hashes in binary (random to zstd; values of at most internMax
//     characters), is at most plainMax bytes skips zstd: a zstd block costs
//     more than it saves there.
//
// # Mirrored tables and epochs
//
// Both ends keep the same tables: interned values (valueSlots), bare JIDs
// (bareSlots), resources (resourceSlots), unknown names (nameSlots), stanza
// shapes (shapeSlots), (from, to) pairs (pairSlots), each with fixed slot
// numbers and least-recently-used replacement when full; a FIFO ring of the
// last ringSize id values; a FIFO of templateSlots templates; per bare-JID
// slot, the resource slot of the last JID written with it and a resource
// (lastRes; none when the bare JID enters its slot); the bare-JID slot of
// the last root 'to' written as a JID (tnext) and whether it had a
// resource (tres); per template, the same for the root 'to' of its last
// copy, or of its own stanza before any copy (tlast, tlastRes); and, per
// bare-JID slot, the slot of the root 'to' that followed it last time, one
// table for root 'to's without a resource (succ) and one for those with
// one (succR). Fan-out prediction (version 6): the next copy of a template
// goes to w' = succ[w] (succR[w] when w had a resource) if known, else
// w+1, where w is the template's tlast (the stream's tnext when the
// template has none), and when w had a resource, with w' 's lastRes; a
// copy's root 'to' in JID form teaches succ[tlast] (or succR) when both
// are of one kind and differ; any other stanza's root 'to' in JID form
// teaches succ[tnext] (or succR) the same way. Servers fan out several
// senders' presences and PEP events interleaved (ejabberd does), each in
// its roster's order. Every table operation (insert on a new string, touch on a
// reference, a rank looked up) happens at the same point of the stream on
// both ends, so slot numbers are never sent. The state therefore advances
// only with the ordered link stream: the decoder must see every block of an
// epoch, in order, exactly once (the link session guarantees it). When a
// peer loses its state the link starts a new epoch: Reset on both ends
// empties every table and starts a new zstd stream primed with the
// dictionary.
//
// # Block format (codec version 7: Version)
//
//	block := mode(1 byte) rest
//	mode 0: uvarint(n) stanza×n                  plain, outside the zstd stream
//	mode 1: uvarint(size), then the bytes of one flush of the epoch's zstd
//	        stream, which carry
//	        uvarint(n) uvarint(len) stanza×n     (len bytes in all)
//	mode 2: the same for n = 1: uvarint(size), zstd of uvarint(len) stanza
//	mode 0x20|size (size 1..31): mode 1 with its size in the mode byte
//	mode 0x40|size (size 1..63): mode 2 with its size in the mode byte
//	mode&0x80: one stanza, plain; the mode byte is its flags byte with bit
//	        7 set (stanza flags never use bit 7)
//
// size is the number of bytes of XML the batch decodes to, in units of 256
// bytes rounded up (version 4 added it; version 3 blocks had none; version
// 6 puts a size that fits in the mode byte, one byte less a block: an
// encoder always does, and a size of 0 is refused). A
// decoder refuses a block whose size is above its bound (WithMaxDecoded; the link uses its configuration, which
// it announces in HELLO, and an encoder is given the peer's), whose len is
// above 2×256×size + 16×n + 16, or whose stanzas decode to another size;
// plain blocks, which have no size, are held to the bound while they
// are decoded. So a small block cannot make a decoder allocate more than
// about its bound, twice that for the structural form, and the zstd window.
//
//	stanza := flags(1 byte) ..., tested in this order:
//	  flags&32 shape:    [uvarint] payload…       the shape (below) of
//	                     recency rank r in the shape table, r = bits 0-4 and
//	                     6 (bit 6 = 32), and when that is 63, 63 + the
//	                     uvarint; the shape's first byte is the stanza's
//	                     flags; its holes are filled from the payloads that
//	                     follow, in order
//	  flags&16 template: [slot] value             template with a new 'to';
//	                     bits 0-3: the template's age (0 = the newest kept),
//	                     or 15: its slot follows in one byte
//	  flags&16|64:       [slot]                   the same, and the 'to' is
//	                     the template's predicted next recipient (above:
//	                     a bare JID, or a full JID with lastRes; version 6
//	                     added the full JIDs and the per-template order)
//	  flags&64 (no 16):  uvarint(len) shape payload…  a new shape inline
//	                     (without its first byte, which is flags&^64): it
//	                     enters the shape table, then fills as above
//	  flags&1  raw:      uvarint(len) bytes       the stanza byte for byte
//	  otherwise element (full form); flags&2: text escapes quotes, &4:
//	  attributes in double quotes, &8: keep the decoded stanza as the next
//	  template
//	element := name(code, reserved 3) { attrname(code, reserved 1) value } 0 content
//	content := 0 (end; <x/> if nothing came) | 1 (<x></x>) | 2 value (text) |
//	           element, repeated until 0
//	code    := uvarint: reserved values, then r = new name (uvarint len,
//	           bytes), then vocab entries, then name-table slots
//	value   := uvarint form: 0 empty, 1/2 literal (2 = interned), 3/4 UUID,
//	           5/6 hex, 7/8 base64, 9/10 packed id, 11 JID, 12 id ring,
//	           13 timestamp, 16 the most recent id, 17 pair (below), 18 the
//	           pair's second half, 19+r (r < 64) the
//	           value-table entry of recency rank r (0 = the most recently
//	           used), 83.. vocab entries then value-table slots, then
//	           (83+len(vocab)+valueSlots) long base64 (below), then
//	           echo and echo naming its epoch (below, "Echoed ids and values"), then
//	           an id of one ASCII character outside base64url (aioxmpp's
//	           ':') and 8 or more base64url characters: uvarint(chars<<7 |
//	           character), the characters packed as in 9/10
//	JID     := uvarint(0) uvarint(len) local value(domain) | uvarint(1+slot)
//	           then uvarint: 0 no resource, 1 new (uvarint len, bytes), 2
//	           the bare JID's lastRes (version 6), 3+slot
//	time    := uvarint(zigzag(seconds - last)*10 + digits), then, if digits
//	           > 0, uvarint(fraction): "2006-01-02T15:04:05[.fraction]Z" with
//	           that many fraction digits; last is the previous timestamp of
//	           the epoch (0 at its start)
//
// Base64: forms 7 and 8 carry padded standard base64 of at least 16
// characters, without line breaks, that decodes and re-encodes to the same
// characters (padding bits zero), as uvarint(n) and its n bytes; 8 also
// enters the value table (at most internMax characters). Long base64
// (version 5), for a value of more than internMax characters that is such
// base64, in one line or broken into lines (vCard BINVAL, often at 76 or
// 64 characters with CRLF or LF): uvarint(n), uvarint(layout), n bytes. Layout 0 is one line; otherwise layout =
// line<<3 | crlf<<2 | lead<<1 | trail, and the value is the base64 of the
// bytes in lines of line characters (the last one as long or shorter)
// separated by "\n", or "\r\n" when crlf, with a break before the first
// when lead and after the last when trail. Text that these forms would not
// give back exactly (a break of the other kind, a blank or indented line,
// trailing spaces, base64url, padding missing or with bits set) crosses as
// a literal. In a shape, forms 7 and 8 keep the form and n (an IV's length
// does not change), long base64 only the form (a payload's does): n and
// the layout are in the stanza.
//
// Pairs: the root's 'from' and 'to' of a message or iq (not presence), when
// both are non-empty and at most maxInterned bytes, are always written as
// forms 17 (the first of the two) and 18 (the second). Form 17 is followed
// by uvarint x: x >= 2, the pair of rank x-2 in the pair table's recency
// order (0 = the most recently used) gives both values and form 18 carries
// nothing; x = 0, both are JIDs and 17 and 18 are each followed by a JID
// without its form byte; x = 1, each is followed by a value. A pair enters
// the pair table after the root's attributes unless it came from the
// table. Every root 'to' written in JID form (a template's copy's
// included) sets tnext to its bare slot and tres to whether it has a
// resource; for a stanza other than a template's copy, when the old tnext
// was a slot other than the new one and the old tres equals the new,
// succ[old] (succR[old] when both had a resource) becomes the new slot; a
// template's copy teaches succ through the template's tlast instead
// (above), then sets its tlast.
// A stanza that becomes a template (flags&8) sets its tlast to tnext and
// tres once it is written. Every JID with a resource sets lastRes of its
// bare slot to the resource's slot.
//
// Shapes: after every element stanza (not raw, not template), both ends
// compute its shape, its flags byte then its full form with each
// top-level attribute or text value cut out, except empty values, the most
// recent id, a pair's second half and attribute values that are vocab
// entries (text that is a vocab entry is cut out): a value whose form is
// UUID, hex, base64, long base64, packed, JID, timestamp, id ring, 17 or
// 18 becomes uvarint(15) then its header (the form, plus the length for
// hex, base64 (7, 8) and packed), and its payload (the rest) is what a
// shaped stanza carries;
// any other value becomes uvarint(14) and a shaped stanza carries it whole.
// An element stanza whose shape (first byte included) is at most shapeMax
// bytes crosses as a shape: by rank when the table holds it, else inline
// (and it enters the table); a longer one crosses as its full form.
//
// The vocabulary, the table sizes and these codes are the wire format: both
// ends must run the same build (they do: the two gateways of a pair are
// deployed together).
//
// # What decoding gives back (canonicalization)
//
// Decoding yields the same XML infoset: the same elements, attributes (in
// the same order) and namespaces, and the same character data, whitespace
// included. The bytes are identical for stanzas written the way Prosody,
// ejabberd and isthmus's simulator write them. Otherwise they are
// canonicalized as follows:
//   - attribute values in single quotes, or all in double quotes when the
//     stanza's first attribute was; one space before each attribute and none
//     before '>' or '/>' or in end tags;
//   - entity and character references are replaced by the characters; on
//     output attribute values escape & < > ' " and text escapes & < > (and
//     ' " as well when the stanza wrote them as entities in text);
//   - an empty element keeps its form (<x/> or <x></x>).
//
// Stanzas the structure cannot carry cross byte for byte (raw): namespace
// prefixes other than xml:lang (xmlns:foo declarations, prefixed elements
// or attributes), comments, processing instructions, CDATA, DOCTYPE, a
// carriage return, tab or newline in an attribute value (text keeps them,
// carriage returns included, byte for byte), a character reference to a
// control character (&#13;), control or
// non-XML characters, invalid UTF-8, nesting deeper than maxDepth, names
// longer than maxInterned bytes, a canonical form longer than
// MaxStanzaSize, and anything that is not exactly one well-formed element.
//
// # Echoed ids and values (version 7)
//
// A receipt, a chat marker or an iq result carries an id the other
// direction of the same link carried first; a MUC reflects a message, a
// status or an occupant's presence back to its sender's side; a client
// submits the form it was sent. Each gateway keeps two IDLogs: what its
// encoder wrote (sent) and what its decoder read (received), numbered from
// 0 in each epoch of that direction (a generation, named by the epoch
// number the link passes to IDLog.Start). A log holds every id that enters
// a recent-id ring, and every other value of echoValueMin to echoValueMax
// bytes that crossed as a literal, UUID, hex, base64, packed id or echo
// (echoLogged; not a vocab entry, a table reference, a JID or a timestamp),
// in the order the stream carries them. A gateway's encoder echoes from
// its received log (Encoder.EchoIDs); the peer's decoder resolves from its
// sent log (Decoder.EchoIDs), which holds everything the encoder can name,
// and more.
//
// An id of at least echoMinLen characters that is not in the ring, or
// another value of echoValueMin to echoValueMax bytes that is not in the
// value table, a JID or a timestamp, and that is among the last echoWindow
// entries of the received log's current generation, crosses as
// formEchoEpoch (the generation's epoch and the entry's number) the first
// time in an epoch of this direction or after the generation changed, else
// as formEcho, the number's difference from the last echoed number plus
// one. Either then enters the ring (an id) or the value table (another
// value of at most internMax bytes), as it would have as a literal. A
// log keeps the last echoLogSize entries of its current and previous
// generation, and a sent log on a link (IDLog.RetainUnacked) also every
// entry from echoWindow before what the peer acknowledged on, so that an
// echo resolves however far ahead of the peer this end runs; a reference
// to anything else is ErrCorrupt, and the link starts a new epoch for this
// direction. The generations are the
// link's business: it starts one in the sent log when its encoder starts
// an epoch and one in the received log when its decoder does
// (link/session_dict.go). Both gateways of a pair run the same build
// (HELLO carries Version), so no negotiation is needed; a stream whose
// codecs have no logs never echoes.
//
// # Limits
//
// The limits are one set of constants (limits.go) that both ends read.
// Sizes declared by the peer are checked before anything is allocated:
// MaxBatchStanzas, MaxStanzaSize, the decoded size of a block (at most the
// decoder's bound, MaxBatchBytes or less: WithMaxDecoded), table entries
// and names of at most maxInterned bytes (pairs twice that), shapes of at
// most shapeMax, templates of at most templateMax decoded bytes; every
// table has a fixed number of slots, so a decoder's tables hold at most a
// few MB; the zstd decoder runs with WithDecoderMaxMemory(WindowSize). Every
// decoding error wraps ErrCorrupt and leaves the decoder failed until Reset,
// so the link session ends cleanly instead of guessing.
//
// The encoder checks the same limits before it writes anything: a stanza
// whose structure is outside them (a name longer than maxInterned, nesting
// deeper than maxDepth, a canonical form longer than MaxStanzaSize) crosses
// raw, and a stanza or batch no block can carry (longer than MaxStanzaSize,
// or decoding to more than the peer decoder's bound) is refused with an
// *UnencodableError wrapping ErrUnencodable, the encoder's state unchanged:
// Encode never writes a block the decoder refuses (FuzzEncodeDecode).
// DecodedSize and Check answer the same question for one stanza, without an
// encoder.
//
// Captures (SplitStream, ReadCapture) are raw S2S streams as a gateway's
// [capture] records them; `isthmus bench` compares the codec with plain XML,
// XEP-0138-style zlib and streaming zstd on them, and EqualInfoset is its
// independent check of every decoded stanza.
package compress
