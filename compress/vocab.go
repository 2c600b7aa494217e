package compress

// vocab is the static table of the XMPP vocabulary (RFC 6120/6121 and the
// common XEPs): element and attribute names, namespaces, disco features and
// frequent attribute and text values. A string in it crosses the link as its
// index. The table is part of the wire format: entries may only be
// appended, and appending bumps Version (the link refuses a peer whose
// differs). The most frequent entries come first, because the first ones
// cost one byte.
var vocab = []string{
	// 0: stanza and attribute names, frequent values
	"message", "presence", "iq", "from", "to", "type", "id", "xmlns",
	"chat", "get", "result", "set", "error", "unavailable", "probe", "body",
	"show", "status", "priority", "c", "x", "photo", "delay", "query",
	"hash", "node", "ver", "sha-1", "stamp", "var", "feature", "identity",
	"http://jabber.org/protocol/caps", "vcard-temp:x:update", "urn:xmpp:delay", "urn:xmpp:receipts",
	"http://jabber.org/protocol/chatstates", "urn:xmpp:chat-markers:0", "urn:xmpp:sid:0", "urn:xmpp:hints",
	"urn:xmpp:ping", "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items", "urn:xmpp:idle:1",
	"active", "composing", "paused", "inactive", "gone", "request", "received", "markable",
	"displayed", "acknowledged", "origin-id", "stanza-id", "store", "no-store", "no-copy", "no-permanent-store",
	"away", "xa", "dnd", "ping", "idle", "since", "category", "name",
	"client", "pc", "phone", "web", "server", "im", "item", "items",
	"pubsub", "jid", "by", "xml:lang", "en", "thread", "subject", "normal",
	"groupchat", "headline", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "cancel", "modify",
	"auth", "wait", "continue", "text", "urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable", "item-not-found", "feature-not-implemented",
	"forbidden", "bad-request", "not-allowed", "not-authorized", "remote-server-not-found", "remote-server-timeout", "recipient-unavailable", "internal-server-error",
	// 112
	"nick", "http://jabber.org/protocol/nick", "max_items", "metadata", "info", "data", "bytes", "height",
	"width", "image/png", "image/webp", "image/jpeg", "urn:xmpp:avatar:metadata", "urn:xmpp:avatar:data", "http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#event",
	"event", "publish", "retract", "vCard", "vcard-temp", "PHOTO", "TYPE", "BINVAL",
	"FN", "NICKNAME", "jabber:iq:version", "version", "os", "jabber:iq:last", "seconds", "urn:xmpp:time",
	"time", "tzo", "utc", "jabber:iq:roster", "subscription", "ask", "both", "none",
	"group", "urn:xmpp:carbons:2", "sent", "private", "forwarded", "urn:xmpp:forward:0", "urn:xmpp:mam:2", "fin",
	"complete", "jabber:x:data", "field", "value", "form", "submit", "hidden", "FORM_TYPE",
	"http://jabber.org/protocol/rsm", "first", "last", "count", "after", "before", "max", "index",
	"encrypted", "header", "key", "iv", "payload", "sid", "rid", "prekey",
	"eu.siacs.conversations.axolotl", "urn:xmpp:omemo:2", "keys", "urn:xmpp:openpgp:0", "openpgp", "signcrypt", "urn:xmpp:eme:0", "namespace",
	"replace", "urn:xmpp:message-correct:0", "reactions", "reaction", "urn:xmpp:reactions:0", "reply", "urn:xmpp:reply:0", "fallback",
	"urn:xmpp:fallback:0", "for", "start", "end", "body-text", "x", "jabber:x:oob", "url",
	"desc", "jabber:x:conference", "http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user", "password", "history", "affiliation", "role",
	"member", "participant", "moderator", "owner", "admin", "visitor", "code", "reason",
	"invite", "decline", "urn:xmpp:jingle-message:0", "propose", "proceed", "accept", "reject", "finish",
	"description", "media", "audio", "video", "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:1", "jingle", "action",
	"http://jabber.org/protocol/commands", "jabber:iq:private", "urn:xmpp:blocking", "block", "unblock", "blocklist", "urn:xmpp:bookmarks:1", "conference",
	"autojoin", "true", "false", "1", "0", "Prosody", "Disconnected: Received end of stream", "Disconnected: connection closed",
	"http://conversations.im", "https://gajim.org", "https://dino.im", "http://profanity-im.github.io", "https://psi-plus.com", "http://monal-im.org/", "https://poez.io", "http://www.process-one.net/en/ejabberd/",
	"Conversations", "Gajim", "Dino", "Profanity", "Psi+", "Monal", "ejabberd", "hints",
	"jabber:server", "jabber:client", "jabber:iq:time", "msgoffline", "urn:xmpp:carbons:rules:0", "vcard-temp:x:update", "urn:xmpp:mds:displayed:0+notify", "urn:xmpp:bookmarks:1+notify",
	"eu.siacs.conversations.axolotl.devicelist+notify", "http://jabber.org/protocol/bytestreams", "http://jabber.org/protocol/geoloc+notify", "http://jabber.org/protocol/ibb", "http://jabber.org/protocol/mood+notify", "http://jabber.org/protocol/nick+notify", "http://jabber.org/protocol/si", "http://jabber.org/protocol/si/profile/file-transfer",
	"http://jabber.org/protocol/tune+notify", "http://jabber.org/protocol/rosterx", "http://jabber.org/protocol/pubsub#publish", "http://jabber.org/protocol/pubsub#retrieve-items", "urn:xmpp:avatar:metadata+notify", "urn:xmpp:bob", "urn:xmpp:hashes:2", "urn:xmpp:jingle:apps:dtls:0",
	"urn:xmpp:jingle:apps:file-transfer:3", "urn:xmpp:jingle:apps:file-transfer:5", "urn:xmpp:jingle:apps:grouping:0", "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:rtcp-fb:0", "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle:transports:ibb:1", "urn:xmpp:jingle:transports:ice-udp:1",
	"urn:xmpp:jingle:transports:s5b:1", "urn:xmpp:message-moderate:0", "urn:xmpp:message-retract:1", "urn:xmpp:openpgp:0:public-keys+notify", "urn:xmpp:mam:0", "urn:xmpp:mam:1", "urn:xmpp:sic:1", "urn:xmpp:csi:0",
	"urn:xmpp:http:upload:0", "urn:xmpp:push:0", "urn:xmpp:sm:3", "urn:xmpp:ping", "urn:ietf:params:xml:ns:vcard-4.0", "http://jabber.org/protocol/activity", "http://jabber.org/protocol/mood", "http://jabber.org/protocol/tune",
	"http://jabber.org/protocol/geoloc", "http://jabber.org/protocol/muc#owner", "http://jabber.org/protocol/muc#admin", "urn:xmpp:mucsub:0", "urn:xmpp:message-retract:0", "urn:xmpp:styling:0", "urn:xmpp:spoiler:0", "urn:xmpp:attention:0",
	"conflict", "undefined-condition", "not-acceptable", "policy-violation", "resource-constraint", "gone", "redirect", "jid-malformed",
	"registration-required", "subscription-required", "unexpected-request", "payment-required", "item", "list", "devices", "device",
	"label", "set", "retrieve", "options", "affiliations", "subscriptions", "configure", "default",
}

// vocabIndex maps a static string to its index (the first occurrence wins).
var vocabIndex = func() map[string]int {
	m := make(map[string]int, len(vocab))
	for i, s := range vocab {
		if _, ok := m[s]; !ok {
			m[s] = i
		}
	}
	return m
}()
