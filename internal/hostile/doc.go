// Package hostile holds the hostile-input suite (issue 6): a running
// gateway pair, a well-behaved local server on each side sending messages
// through it all the time, and a list of attacks against gateway A's S2S
// port and gateway B's link port — malformed and restricted XML, oversize
// and overdeep stanzas, spoofed domains, dialback with wrong keys, stanzas
// before authentication, connection floods, slowloris senders, garbage and
// strangers on the link.
//
// For each case the suite checks the expected refusal (the stream error
// the attacker receives, the link handshake failing, or for a fault
// confined to one stanza — not strict XML, over a limit: xml_test.go — the
// stanza error bounced to its sender with the stream kept), that the gateway
// counted it by reason, and that the good servers' messages sent while the
// attack ran all arrived, each exactly once. It prints one line per case:
//
//	go test -v -run TestHostile ./internal/hostile
//
// TestHostile runs the whole pair in memory inside a testing/synctest
// bubble (an emu.Net whose connections carry source addresses, so
// allow_from and the limits per address apply as over TCP; an emu link
// between the gateways): time is virtual, timings are exact, and a case
// that shows something did not happen checks once every goroutine is
// blocked. TestHostileTCP (not in -short) runs the same cases over real
// loopback sockets, for what only the kernel does (resets, socket buffers,
// the accept queue).
//
// The package has no non-test code.
package hostile
