// Package spool keeps what a gateway accepted for the link on disk until the
// peer has acknowledged it, so that a restart (or a kill -9) loses nothing.
//
// A Spool is one append-only journal file, spool.log, in the gateway's state
// directory. The link session (package link) emits its changes as operations
// and the link driver appends them here before the frames they describe go on
// the wire; Open replays the journal into the state a new session resumes
// from (item.Restored).
//
// # File format (version 1; 'J' added later, 'I' still read)
//
//	header  "ISTHSPL1"
//	record  kind 1 byte | length uvarint | payload | CRC-32C of kind+payload, 4 bytes big-endian
//
//	kind  payload
//	'J'   item:  id uvarint | class 1 byte | expires unix ns varint (0: none) |
//	             coalesce length uvarint | coalesce | pair length uvarint | pair |
//	             data (the rest)
//	'I'   item as 'J' without pair length and pair (written before pairs
//	             existed; read as an item with no pair)
//	'F'   frame: epoch uvarint | seq uvarint | ids uvarint… (DATA frame seq of epoch carries them)
//	'A'   ack:   epoch uvarint | n uvarint (frames 1..n of epoch acknowledged: their items leave)
//	'D'   drop:  ids uvarint… (removed unsent: coalesced, dropped presence, expired)
//	'R'   recv:  peer epoch uvarint | h uvarint (DATA frames of the peer's epoch received)
//
// A frame of a new epoch forgets the frames of the previous one (their
// items are unframed again: the session re-encoded them). Replay stops at the
// first record that is cut short or fails its CRC (a write torn by a crash)
// and the file is truncated there.
//
// # Durability
//
// Every operation is one write(2) to the file before the call returns, so a
// killed process loses nothing that was accepted. Power loss is covered by
// fsync, per the Sync policy: SyncBatch (default) makes the driver call Sync
// before each write to the link socket and at least every batch window, so
// anything the peer hears about is on disk; SyncAlways fsyncs every Add
// before it returns; SyncNone leaves it to the operating system.
//
// # Compaction
//
// When the file grows past four times the live bytes (and at least 4 MiB),
// it is rewritten with only the live state (items, frames, ack, recv) to
// spool.log.new, fsynced, and renamed over spool.log.
package spool
