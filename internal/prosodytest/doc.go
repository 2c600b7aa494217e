// Package prosodytest runs real Prosody servers and real XMPP clients for
// isthmus tests.
//
// Tests call [Start] to get a private Prosody (Debian package "prosody",
// 0.12) listening on loopback only, on free ports, with its data, pid file and
// debug log in a t.TempDir(). Users are registered with prosodyctl before the
// server starts; rosters can be written into Prosody's storage before start
// so that presence at login can be tested without subscription round trips.
// Outgoing S2S for chosen domains is sent to a fixed host:port by the plugin
// testdata/prosody/plugins/mod_s2s_connect_override.lua (Prosody itself
// has no such option): point it at an isthmus gateway, or at another Prosody.
//
// S2S is plain TCP with dialback (no TLS, not required), as isthmus speaks it
// to its local servers. Client connections are plain TCP as well: [Dial]
// drives an in-process mellium.im/xmpp client that authenticates with SCRAM
// (PLAIN as a fallback). mellium only offers SASL on a stream it considers
// secure, so the client session starts with the Secure bit set; that is a
// deliberate shortcut for loopback-only test servers and must not be copied
// into production code.
//
// When prosody is not installed, [Require] (and so [Start]) skips the test,
// except when the environment variable CI is set: CI must run these tests,
// so there it fails instead.
package prosodytest
