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
	// 348 (version 6): MUC (XEP-0045: status codes, room features and
	// the muc#roomconfig and muc#roominfo registries), data forms (XEP-0004,
	// XEP-0122), addressing (XEP-0033), XHTML-IM, PEP payloads (tune,
	// geoloc), pubsub features (XEP-0060): all from the specifications
	"110", "100", "170", "201", "210", "303", "307", "301",
	"321", "322", "332", "104", "172", "173", "174", "outcast",
	"http://jabber.org/protocol/muc#roomconfig", "http://jabber.org/protocol/muc#roominfo", "http://jabber.org/protocol/muc#request", "http://jabber.org/protocol/muc#stable_id", "http://jabber.org/protocol/muc#self-ping-optimization", "urn:xmpp:occupant-id:0", "occupant-id", "muc_rooms",
	"muc_public", "muc_hidden", "muc_persistent", "muc_temporary", "muc_open", "muc_membersonly", "muc_moderated", "muc_unmoderated",
	"muc_nonanonymous", "muc_semianonymous", "muc_passwordprotected", "muc_unsecured", "destroy", "actor", "maxstanzas", "maxchars",
	"muc#roomconfig_allowinvites", "muc#roomconfig_allowpm", "muc#roomconfig_changesubject", "muc#roomconfig_enablelogging", "muc#roomconfig_getmemberlist", "muc#roomconfig_lang", "muc#roomconfig_pubsub", "muc#roomconfig_maxusers",
	"muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_persistentroom", "muc#roomconfig_presencebroadcast", "muc#roomconfig_publicroom", "muc#roomconfig_roomadmins", "muc#roomconfig_roomdesc",
	"muc#roomconfig_roomname", "muc#roomconfig_roomowners", "muc#roomconfig_roomsecret", "muc#roomconfig_whois", "muc#maxhistoryfetch", "muc#roominfo_contactjid", "muc#roominfo_description", "muc#roominfo_lang",
	"muc#roominfo_ldapgroup", "muc#roominfo_logs", "muc#roominfo_occupants", "muc#roominfo_subject", "muc#roominfo_subjectmod", "muc#roominfo_pubsub", "muc#roominfo_changesubject", "muc#roominfo_avatarhash",
	"anyone", "participants", "moderators", "title", "instructions", "option", "required", "reported",
	"boolean", "fixed", "jid-multi", "jid-single", "list-multi", "list-single", "text-multi", "text-private",
	"text-single", "validate", "http://jabber.org/protocol/xdata-validate", "datatype", "xs:integer", "xs:language", "xs:string", "xs:boolean",
	"addresses", "address", "http://jabber.org/protocol/address", "replyto", "ofrom", "http://jabber.org/protocol/xhtml-im", "html", "http://www.w3.org/1999/xhtml",
	"p", "span", "style", "em", "strong", "a", "href", "br",
	"current", "tune", "artist", "length", "source", "track", "uri", "rating",
	"geoloc", "lat", "lon", "accuracy", "alt", "country", "locality", "timestamp",
	"mood", "http://jabber.org/protocol/shim", "http://jabber.org/protocol/shim#SubID", "jabber:iq:oob", "urn:xmpp:mam:2#extended", "http://jabber.org/protocol/offline", "presence-in", "headers",
	"http://jabber.org/protocol/pubsub#access-authorize", "http://jabber.org/protocol/pubsub#access-open", "http://jabber.org/protocol/pubsub#access-presence", "http://jabber.org/protocol/pubsub#access-whitelist", "http://jabber.org/protocol/pubsub#auto-create", "http://jabber.org/protocol/pubsub#auto-subscribe", "http://jabber.org/protocol/pubsub#collections", "http://jabber.org/protocol/pubsub#config-node",
	"http://jabber.org/protocol/pubsub#create-and-configure", "http://jabber.org/protocol/pubsub#create-nodes", "http://jabber.org/protocol/pubsub#delete-items", "http://jabber.org/protocol/pubsub#delete-nodes", "http://jabber.org/protocol/pubsub#filtered-notifications", "http://jabber.org/protocol/pubsub#get-pending", "http://jabber.org/protocol/pubsub#instant-nodes", "http://jabber.org/protocol/pubsub#item-ids",
	"http://jabber.org/protocol/pubsub#last-published", "http://jabber.org/protocol/pubsub#manage-subscriptions", "http://jabber.org/protocol/pubsub#member-affiliation", "http://jabber.org/protocol/pubsub#modify-affiliations", "http://jabber.org/protocol/pubsub#multi-items", "http://jabber.org/protocol/pubsub#outcast-affiliation", "http://jabber.org/protocol/pubsub#persistent-items", "http://jabber.org/protocol/pubsub#presence-notifications",
	"http://jabber.org/protocol/pubsub#presence-subscribe", "http://jabber.org/protocol/pubsub#publish-options", "http://jabber.org/protocol/pubsub#publish-only-affiliation", "http://jabber.org/protocol/pubsub#publisher-affiliation", "http://jabber.org/protocol/pubsub#purge-nodes", "http://jabber.org/protocol/pubsub#retract-items", "http://jabber.org/protocol/pubsub#retrieve-affiliations", "http://jabber.org/protocol/pubsub#retrieve-default",
	"http://jabber.org/protocol/pubsub#retrieve-subscriptions", "http://jabber.org/protocol/pubsub#shim", "http://jabber.org/protocol/pubsub#subscribe", "http://jabber.org/protocol/pubsub#subscription-notifications", "http://jabber.org/protocol/pubsub#config-node-max", "http://jabber.org/protocol/pubsub#owner", "urn:xmpp:pep-vcard-conversion:0", "urn:xmpp:vcard4",
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
