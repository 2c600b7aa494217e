package link

import "github.com/isthmus-xmpp/isthmus/link/item"

// The types package link shares with its spool live in package
// link/item; these aliases keep their link names.
type (
	Class    = item.Class
	Item     = item.Item
	Stored   = item.Stored
	Restored = item.Restored
	OpKind   = item.OpKind
	Op       = item.Op
)

// Classes (see item.Class).
const (
	ClassMessage  = item.ClassMessage
	ClassIQ       = item.ClassIQ
	ClassPresence = item.ClassPresence
)

// Spool operations (see item.OpKind).
const (
	OpFrame = item.OpFrame
	OpAck   = item.OpAck
	OpDrop  = item.OpDrop
	OpRecv  = item.OpRecv
)

// entry is an item with its spool id.
type entry struct {
	id uint64
	Item
	inLo bool // in Session.lo (counted in Session.loPairs)
}
