// Package presence is the presence mirror of an isthmus gateway: a pure state
// machine (stanzas and time in, stanzas out; no I/O, no clock, no goroutines)
// that makes only presence changes cross the link and answers presence probes
// and entity-capabilities queries locally.
//
// # Tables
//
// Each gateway keeps two tables, each keyed by contact full JID:
//
//   - out: this side's contacts as delivered to the other side. Used to drop
//     duplicates before the link, to collect fan-outs, and to re-probe.
//   - in: the other side's contacts as delivered to this side. Used to
//     expand fan-outs into one presence per local recipient and to answer
//     probes.
//
// An entry holds the presence payload (its children, canonical: sorted,
// single-quoted, without <delay/> stamps), the bare JIDs of the recipients
// the contact's server delivered exactly that payload to, and when it was
// last confirmed. Gateway A's in table mirrors gateway B's out table.
//
// # Events
//
// FromLocal takes a presence or iq a local server sent to a remote domain:
//
//   - available/unavailable broadcast (from a contact to a bare JID): if the
//     recipient already holds the same payload it is a duplicate and goes
//     nowhere; otherwise it joins a fan-out for that contact resource, which
//     is sent when Config.Window has passed (or when a different presence
//     from the same resource arrives, or FlushFrom is called because another
//     stanza from the contact is about to cross and must not overtake it) as
//     ONE mirror stanza per recipient domain. Directed presence (to a full JID) passes through, except an
//     answer to a probe from the peer: servers answer a probe to the
//     prober's full JID, and when the prober's bare JID already holds that
//     payload (answered within a minute of the probe) it is a duplicate and
//     only a confirmation (confirm='1', once per resource) crosses.
//   - probe (from a local user to a remote contact): answered at once with
//     each resource's payload for which the prober is a recipient; if there
//     is none the probe crosses (the contact's server decides). An answered
//     probe also crosses, as a refresh, when the entries are older than
//     Config.Refresh and no refresh for that contact crossed within it. While
//     the link is down, answers carry <delay xmlns='urn:xmpp:delay'/> with the
//     time the entry was last confirmed (XEP-0203).
//   - unsubscribe, unsubscribed and presence errors revoke the recipient at
//     once from the contact's entries (and from fan-outs being collected), on
//     both gateways, since they see the stanza on its way: nothing is
//     replayed to a revoked recipient; its next probe crosses. An entry
//     left without recipients is removed.
//   - iq get disco#info with a caps node#ver: answered from the cache when
//     the ver is known and the asker received the contact's presence
//     advertising it; otherwise it crosses and its result is verified
//     against the ver, with the algorithm the contact's mirrored presence
//     names (sha-1 or sha-256), before being cached. Results crossing in
//     either direction fill the cache. The cache is shared by all users, so
//     a result is cached only after the XEP-0115 §5.4 checks: no value
//     containing '<', no duplicate identity or feature, one hidden
//     FORM_TYPE with one value per form and no two forms of one FORM_TYPE,
//     nothing the hash does not cover; a result that fails them
//     (CapsRefused), or whose algorithm is unknown or unseen
//     (CapsUnverifiable), reaches its asker only and is not cached.
//   - anything carrying the mirror namespace is dropped (Spoofed): only
//     gateways speak it.
//
// FromPeer takes what the peer sends: mirror stanzas (applied to the in table
// and expanded), sync iqs, and stanzas that pass through (revocations, caps
// results and plain presence to a bare JID, see # Memory, are observed on
// the way).
//
// Tick(now) runs the timers; Next says when it is due:
//
//   - fan-out windows;
//   - re-probe, every Config.Reprobe: each contact of the out table is probed
//     at its own (local) server, from one of its recipients; unchanged
//     answers are duplicates that only confirm the entry, changes cross;
//   - the digest heartbeat, every Config.Reprobe (shifted by half a period),
//     and whenever the link comes up (SetLink): see Sync below. A received
//     heartbeat confirms the whole in table;
//   - time-out: an entry not confirmed for Config.Timeout is removed; from
//     the in table with unavailable synthesized to each local recipient,
//     from the out table with an unavailable mirror stanza to the peer.
//
// A bare-JID unavailable removes every resource of the contact, with
// unavailable synthesized for each resource to its recipients.
//
// # Wire format (mirror protocol version 0, namespace urn:xmpp:isthmus:mirror:0)
//
// Everything is an XMPP stanza, so the link's codec compresses it like any
// other. Mirror stanzas are changes to, and checks of, what was sent before
// (Action.Mirror): the link must carry them in order, none replacing
// (coalescing) or overtaking another. A fan-out crosses as a presence from
// the contact to the recipients' domain, with the payload and one <m/>
// element:
//
//	<presence from='carol@b.test/phone' to='a.test' [type='unavailable']>
//	  <show>away</show>...
//	  <m xmlns='urn:xmpp:isthmus:mirror:0' add='ann bob' del='cid' [keep='1'] [reset='1'] [confirm='1']/>
//	</presence>
//
// add and del are space-separated localparts in the to domain. The id is
// that of the contact's server's stanza (the first id among the copies of one
// broadcast); the recipients get it, on the fan-out and in probe answers from
// the mirror, as they would have from the contact's server. It takes no part
// in deciding whether a presence is a duplicate.
//
//   - no flag: a new payload. The recipient set in that domain becomes
//     set − del + add, and each member gets the presence.
//   - keep='1': the payload the receiver holds; only the add recipients get it.
//   - type='unavailable': the set − del + add get unavailable and leave the
//     entry, which is removed when no recipient is left; del names those for
//     whom the contact stays available (an unavailable sent to one revoked
//     recipient). A resource's logout has no del: the entry goes. From a
//     bare JID: every resource of the contact is removed, unavailable
//     synthesized for each, and the add recipients get the bare unavailable.
//   - reset='1' (sync repair): the entry is replaced by payload and add
//     (exactly); only recipients whose payload changed get it. With
//     type='unavailable': the entry is removed, unavailable synthesized.
//   - confirm='1' (no payload): the contact's server answered a refresh probe
//     unchanged; the resource's entry (every resource's, from a bare JID)
//     counts as confirmed.
//
// Sync: the sender of a heartbeat sends the digest of its out table from one
// of its domains (Config.Self) to one of the peer's (Config.Peer):
//
//	<iq type='set' id='isthmus-sync-…'><sync xmlns='urn:xmpp:isthmus:mirror:0' digest='16 hex' n='entries'/></iq>
//
// The digest is the first 8 bytes of SHA-256 over the sorted lines "JID
// entryhash\n", where entryhash is the first 8 bytes of SHA-256 over JID,
// payload and sorted recipients. If it equals the receiver's in-table digest
// the answer is an empty result; otherwise the result lists the receiver's
// entries, <e k='JID' h='entryhash'/>, and the sender sends a reset stanza
// for each entry that differs or is missing there, and an unavailable reset
// for each the receiver has and the sender does not: only differing entries
// cross.
//
// # Persistence
//
// State and Restore give the two tables and the caps cache as a State, which
// MarshalState encodes (version StateVersion: a header line, a version byte,
// then a DEFLATE-compressed body of varints with a table of the strings the
// entries share; the format is spelled out at MarshalState; about 25 bytes
// per realistic entry); the gateway stores it atomically in its state
// directory. UnmarshalState also reads the JSON of version 1. After a restart
// entries keep their confirmation times, and the digest exchange at the next
// link-up repairs whatever changed meanwhile.
//
// # Memory
//
// Each table is bounded by Config.MaxEntries and Config.MaxBytes. Entries
// share their payload children and recipient JIDs through a reference-counted
// interner and keep no parsed tree and no map (see table.go): about 300 bytes
// of heap per realistic entry (BenchmarkMirrorMemory). A fan-out that would
// take the out table beyond MaxBytes crosses as plain presence, one stanza
// per recipient, and those recipients leave the entry; the peer, seeing
// plain presence from a contact resource to a bare JID (which a gateway
// otherwise sends only for a contact resource without an entry), removes
// them from its in entry, so both tables stay equal.
//
// # Files
//
// mirror.go holds Config, Mirror and the entry points (FromLocal, FromPeer,
// SetLink, Tick); table.go the tables and the time-out; fanout.go the
// fan-outs; apply.go the mirror stanzas from the peer; probe.go probes and
// the re-probe; sync.go the digest exchange; caps.go the caps cache;
// state.go the persisted state; xml.go parsing and canonical serialization.
package presence
