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
// The package has no non-test code.
package hostile
