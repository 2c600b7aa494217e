// Package item holds the types package link and its disk spool
// (link/spool) share: the stanza a gateway hands the link (Item, its
// Class), the durable-state changes a link session emits for the spool
// (Op) and the state the spool gives back after a restart (Restored, its
// Stored items). Package link aliases them, so its users name them
// link.Item, link.Op…; the spool imports only this package.
package item

import "time"

// Class is the kind of stanza an Item carries, as the gateway tells it: the
// link does not parse XMPP. It sets the item's priority and drop rule.
type Class uint8

// Classes. The zero value is treated as Message.
const (
	ClassMessage  Class = 0 // high priority; never dropped silently
	ClassIQ       Class = 1 // high priority; never dropped silently
	ClassPresence Class = 2 // low priority; coalesced, dropped oldest first when the spool is full
)

func (c Class) String() string {
	switch c {
	case ClassMessage:
		return "message"
	case ClassIQ:
		return "iq"
	case ClassPresence:
		return "presence"
	}
	return "class?"
}

// Low reports whether items of the class are low priority: coalesced,
// and dropped oldest first when the spool is full.
func (c Class) Low() bool { return c == ClassPresence }

// Item is one stanza handed to the link.
type Item struct {
	Data  []byte
	Class Class
	// Coalesce, when not empty, names what a presence is about (the gateway
	// uses "from|to"): a newer queued item with the same key replaces an
	// older one that has not been framed yet, in its place in the queue.
	Coalesce string
	// Pair names the two entities a stanza is between (the gateway uses
	// "bare from|bare to"). Stanzas with the same Pair are delivered in the
	// order they were handed to the link, whatever their Class: a
	// high-class item takes the queued low-class items of its pair ahead of
	// it (RFC 6120 §10.1). Empty: no ordering constraint with other items.
	Pair string
	// Group, when not empty, is a second ordering key: queued low-class
	// items whose Pair equals it are taken ahead of this item too. The
	// gateway sets "bare from|domain of to", the Pair of the presence
	// mirror's fan-out stanzas, so a message does not overtake its sender's
	// presence carried in one.
	Group string
	// Expires is when an iq or message that has not reached the peer is
	// given up and handed back through link.Config.Expired (zero:
	// link.SessionConfig.MaxAge after it was accepted).
	Expires time.Time
}

// OpKind names a change the spool must record; see Op.
type OpKind uint8

// Spool operations emitted by the session.
const (
	OpFrame OpKind = iota + 1 // DATA frame N of Epoch carries IDs
	OpAck                     // frames 1..N of Epoch acknowledged: their items leave
	OpDrop                    // IDs removed without being sent
	OpRecv                    // N DATA frames of the peer's Epoch received
)

// Op is one change of durable state, drained with link.Session.TakeOps and
// written to the spool before the frames Session.Poll returned go on the
// wire.
type Op struct {
	Kind  OpKind
	Epoch uint32
	N     uint32
	IDs   []uint64
}

// Restored is the durable state a session resumes from after a restart (see
// package link/spool).
type Restored struct {
	Epoch     uint32     // the send epoch the peer may hold
	Acked     uint32     // DATA frames of Epoch acknowledged
	Frames    [][]uint64 // ids of frames Acked+1, Acked+2, … of Epoch
	Items     []Stored   // every item not acknowledged, in spool order
	PeerEpoch uint32     // the peer's epoch we were decoding
	H         uint32     // DATA frames of it received
}

// Stored is an item with its spool id.
type Stored struct {
	ID uint64
	Item
}
