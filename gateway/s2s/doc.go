// Package s2s is a small, symmetric XMPP server-to-server implementation:
// RFC 6120 streams in the jabber:server namespace, authenticated with
// XEP-0220 dialback using XEP-0185 keys, with optional STARTTLS; an
// initiating stream uses SASL EXTERNAL (XEP-0178) instead of dialback when
// the receiving server offers it and the TLS configuration holds a
// certificate for the stream's from-domain, and a Server offers it to
// initiators whose client certificate verifies against
// ServerConfig.ClientCAs for their domain (auth.go).
//
// The gateway uses a [Server] to accept S2S streams from local XMPP servers
// for the remote domains it stands in for, and a [Pool] to dial local
// servers and deliver, as a remote domain, the stanzas that arrived over the
// link. The demo builds simulated XMPP servers from the same two types, so
// both roles work against each other and against Prosody or ejabberd.
//
// # Dialback
//
// The initiating server (a Pool, "a.test") opens a stream to the receiving
// server (a Server for "b.test"), which answers with a stream id and its
// features. The initiator sends a key derived from the shared secret; the
// receiver asks the authoritative server of a.test (found with Resolve;
// that is the Server of the side that owns the Pool, sharing its Secret)
// whether the key is right, on a second connection:
//
//	Pool (a.test)            Server (b.test)             Server (a.test)
//	     |--- <stream to=b.test> --->|                          |
//	     |<-- <stream id=S>,features-|                          |
//	     |--- <db:result>KEY ------->|                          |
//	     |                           |--- <stream to=a.test> -->|
//	     |                           |<-- <stream id=T> --------|
//	     |                           |--- <db:verify id=S>KEY ->|
//	     |                           |<-- <db:verify type=valid>|
//	     |                           |--- </stream:stream> ---->|
//	     |<-- <db:result type=valid>-|                          |
//	     |--- stanzas a.test->b.test>|  Deliver(st)             |
//
// KEY = hex(HMAC-SHA256(hex(SHA256(secret)), "b.test a.test S")): keys are
// stateless, so any Server holding the secret answers db:verify, on any
// inbound stream (Prosody sends db:verify over its existing outgoing
// stream when it has one). A Server accepts db:result for several domain
// pairs on one stream and checks every stanza's from/to against the pairs
// verified on that stream. The verification connection does STARTTLS
// (ServerConfig.VerifyTLS) as delivery streams do: servers that require
// TLS (ejabberd's default) refuse db:verify without it. A Pool opens one stream per (from-domain,
// to-domain) pair and bounces queued stanzas when it cannot deliver them.
// Its queue per stream has two bounded shares: stanzas from [Pool.Send]
// (bounced when theirs is full) and replies from [Pool.Reply] (bounces
// the caller made, which wait for room instead: back-pressure on the
// caller, the reader of the stream the stanzas being bounced came from).
//
// # Streams
//
// Each established stream is owned by one reader and one writer goroutine
// under an errgroup; only the writer writes and closes the socket. Each
// stanza's exact input bytes are kept in [Stanza.Raw] (the reader records
// what the XML decoder consumes and cuts at the decoder's input offsets).
// Whitespace keepalives are sent after [Limits.Keepalive] of write idleness
// and ignored on input; streams with no stanza either way for
// [Limits.IdleTimeout] are closed with </stream:stream>, and the peer's
// </stream:stream> is answered in kind.
//
// # Strict input, and what a fault costs
//
// Only namespace-well-formed XML 1.0 is accepted, checked on the exact
// input (encoding/xml alone lets much of this through): no duplicate
// attributes, also after namespace expansion; every element and attribute
// prefix bound; no empty xmlns:p declaration, no binding of the xml prefix to another
// name nor of any other prefix to the xml or xmlns namespace names, no
// declaration of the xmlns prefix, no namespace name with whitespace;
// qualified names only; no character (raw or referenced) outside XML's
// Char; whitespace between attributes. The reader does the namespace
// processing itself on raw tokens, and a scanner under the decoder (the
// recorder) checks characters and bounds what the decoder holds.
//
// A fault confined to one stanza costs that stanza only: one over a limit
// ([Limits.MaxStanzaSize], MaxDepth, MaxAttrs, MaxTextSize, names longer than
// MaxTextSize) is refused with <policy-violation/>, one that is not strict
// XML as above with <bad-request/>. Its start tag gives from, to, type and
// id; the rest is read to its end without being kept, the decoder getting
// only a bounded part of it, so a refused stanza costs bounded memory
// however big it is. After the usual address checks it is reported as an
// "in-refused" [Event] (Reason the condition, Detail the rule) and bounced
// to its sender through [ServerConfig.Reject] (RFC 6120 §8.3; not for an
// error stanza), and the stream reads on.
//
// Faults that leave the stream unreadable or break its rules end it with a
// stream error: XML the decoder cannot read past (mismatched tags, invalid
// UTF-8, '<' in a value, nesting beyond 16*MaxDepth (at least 1024) that
// would cost memory to follow) is <not-well-formed/>, as is any fault in the
// stream header or in a non-stanza element (dialback); comments,
// processing instructions, DOCTYPE and entities are <restricted-xml/>;
// text between stanzas <not-well-formed/>; and <policy-violation/>,
// <invalid-from/>, <host-unknown/>, <not-authorized/>,
// <unsupported-stanza-type/>, … for the stream's rules.
//
// Stanza.Raw is written as is into outgoing streams, whose header declares
// xmlns='jabber:server', the stream prefix and the db prefix. A stanza that
// uses a prefix declared only on the peer's stream header gets that
// declaration added to its own start tag, so that its bytes are
// namespace-well-formed on their own (a strict parser given the stanza
// alone, as the link's peer does, would refuse it otherwise). [ParseStanza]
// holds a stanza alone to the same rules.
package s2s
