package link

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

func (c Class) low() bool { return c == ClassPresence }

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
	// given up and handed back through Config.Expired (zero: MaxAge after
	// it was accepted).
	Expires time.Time
}

// Reason says why an item was handed back.
type Reason uint8

// Reasons for handing an item back.
const (
	ReasonExpired Reason = iota + 1 // it passed its Expires before reaching the peer
)

// entry is an item with its spool id.
type entry struct {
	id uint64
	Item
	inLo bool // in Session.lo (counted in Session.loPairs)
}
