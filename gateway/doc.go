// Package gateway wires one isthmus gateway together: the S2S edge towards
// the local XMPP servers (package gateway/s2s), the link to the peer gateway
// (package link, with the codec of package compress), routing by domain, and
// the byte accounting and admin interface.
//
// Stanzas flow two ways:
//
//	out: local server ──S2S──▶ s2s.Server ──▶ route (to a remote domain) ──▶ link.Send
//	in:  link Deliver ──▶ check (from remote, to local) ──▶ s2s.Pool ──S2S──▶ local server
//
// A stanza the gateway cannot carry is bounced to its sender with an XMPP
// stanza error: a full link queue (link.spool_max_bytes) bounces with
// resource-constraint on the local side, a stanza the link gave up on
// (link.max_age) with remote-server-timeout; a local server that cannot be
// reached bounces (over the link) with the condition the pool reports.
// Each is counted under a dropReason (drops.go), in bounced or, when no
// error reply is possible (errors, results, presence), in dropped.
//
// So every stanza accepted from a local server is delivered or bounced,
// once. Bounces to local senders are never dropped for a full queue: they
// wait for room (s2s.Pool.Reply), in a share of the outgoing stream's
// queue that stanzas from the link do not use, and while they wait the
// reader of the flooding server's stream reads no more (TCP pushes back).
// Only a bounce whose sender's server cannot be reached at all is lost,
// counted (dropped, local-unreachable). TestHostileFloodAccounting checks
// this with 50,000 messages at a link that is down.
//
// Byte accounting, per direction ("out" = local servers → link, "in" = link →
// local servers): stanzas by kind; raw bytes, the stanzas as plain S2S XML
// exactly as the sending server wrote them; link bytes, the frames of the
// link session (codec output plus session overhead); and wire bytes, link
// bytes after TLS plus estimated TCP/IP headers (see package link). The
// savings ratio is raw / wire.
//
// # Admin interface
//
// On admin_listen (ops.go, metrics.go, status.go): a status page at / with
// live SVG charts of raw vs wire bytes and the savings ratio (history: one
// sample a second for an hour; nothing is loaded from elsewhere), its data
// at /api/status and /chart/{rate,ratio}.svg, Prometheus metrics at
// /metrics (all isthmus_*, read from the gateway's counters at scrape time
// by one Collector, on a registry of the gateway's own), /stats (JSON
// Snapshot) and /text. Drain stops accepting S2S connections and waits for
// the link to empty (SIGTERM); Reload applies the settings that are safe to
// change while running (SIGHUP).
package gateway
