// Package compare measures what the isthmus pair saves against what
// operators run today, direct S2S, with real servers and real clients on the
// same emulated link (`make compare`, issue 14).
//
// # Method
//
// Each run starts fresh servers at their default secure S2S settings, the
// same in both runs: Prosody 0.12 for a.test (users alice, carol;
// prosodytest, s2s_require_encryption = true) and ejabberd 23.01 for
// b.test (users bob, dave; MUC service conference.b.test; ejabberdtest,
// s2s_use_starttls: required), both from Debian, both with certificates
// from a private test CA (testpki) that each trusts. The workload runs
// twice over one emulated link (link/emu, a Link with the profile's rate,
// delay and loss; one serializer per direction shared by every connection
// on it, as on one radio):
//
//   - direct: Prosody's S2S for b.test and conference.b.test (the
//     s2s_connect_override plugin) and ejabberd's S2S for a.test (SRV from
//     ejabberdtest's DNS stub) go to relays that carry each TCP connection
//     over the link to the other server. Prosody and ejabberd negotiate
//     what they negotiate as installed: STARTTLS (TLS 1.3), then SASL
//     EXTERNAL or dialback.
//   - pair: the same S2S goes to isthmus gateway A (Prosody's side) and B
//     (ejabberd's side) on loopback (those legs are not emulated and not
//     counted); the gateways' link (TLS) runs over the emulated link. The
//     gateways are set up as in internal/interop: each has a test-CA
//     certificate for the remote domains it stands in for and requires
//     STARTTLS (s2s.require_tls); A trusts the CA (s2s.ca_file), so it and
//     Prosody authenticate each other with SASL EXTERNAL; ejabberd
//     authenticates to B with dialback, which B verifies on a TLS
//     connection back to ejabberd.
//
// The workload is scripted with the project's mellium client
// (prosodytest.Client, which logs in to ejabberd as well): everyone logs
// in; alice⇄bob and carol⇄dave subscribe both ways; alice and bob send iq
// ping, version and disco#info to the other server and ping each other's
// client; bob makes the room lounge@conference.b.test (instant room) and
// dave, alice and carol join; for Options.Duration each of the four sends
// its contact one chat message per Options.Interval (staggered), and every
// sixth message slot one occupant in turn speaks in the room; alice and bob
// then log out and in again Options.Logins times each; everyone logs out.
// Every chat message must arrive exactly once and every groupchat once at
// each occupant, or the run fails. Each phase ends when the link has been
// idle for Options.Quiet (3 s).
//
// Measured, per direction (a→b is what a.test's side sends):
//
//   - link bytes: the emulator's counters, the same for both runs: TCP
//     payload delivered plus retransmitted, plus 52 bytes of TCP/IP header
//     per segment and per delayed ACK (one per two segments the other way),
//     plus 112 bytes (SYN, ACK) for each connection a side opens and 60
//     (SYN/ACK) for each it accepts. Every connection waits one round trip
//     before its first byte. The emulator does not coalesce writes (no
//     Nagle): each write is at least one segment, in both runs.
//   - message latency p50/p90: chat messages sent on one side, from the
//     client's send to the other client's read; MUC latency likewise, to the
//     occupants on the other side.
//   - presence at login: a user logs in (from the TCP connect, through SASL
//     and bind, to sending initial presence) until its client holds its
//     contact's presence from the other side. The a→b row is a user on
//     b.test seeing its a.test contact.
//
// and the ratio direct ÷ pair. Report prints it as Markdown for README;
// the figures measured so far are in docs/measurements.md ("Against direct
// S2S").
//
// # Limits
//
// One setting differs from the servers' defaults, in both runs: ejabberd's
// negotiation_timeout is 120 s instead of 30 s. Over iridium-2400 direct
// S2S needs 20–30 s to negotiate a stream (STARTTLS, certificates, SASL
// EXTERNAL, two stream restarts) on a link the other S2S connection
// shares; at the default ejabberd closed its outgoing stream once as
// "Idle connection (connection-timeout)" and bounced the workload's
// presence. The pair's S2S legs are on loopback and do not come near it.
//
// The machine's other load shows in the latencies; bytes do not depend on
// it beyond the loss draws' timing.
package compare
