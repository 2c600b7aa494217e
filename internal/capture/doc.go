// Package capture records real S2S traffic between two real Prosody servers
// for the codec's corpus (testdata/corpus/prosody-*.xml.gz).
//
// TestCaptureProsody (run by `make corpus`; skipped unless the environment
// variable ISTHMUS_CAPTURE_OUT names an output folder) starts two Prosody
// 0.12 servers with internal/prosodytest, users on each with rosters that
// hold every user of the other side, and points each server's outgoing S2S
// at a recording TCP proxy in front of the other. Real XMPP clients
// (mellium) then log in and out, change presence (show, status, XEP-0115
// caps, XEP-0153 vcard-update), chat (XEP-0184 receipts, XEP-0085 chat
// states, XEP-0333 markers, XEP-0359 origin-id), ping and query the other
// side (disco#info and #items, version, time, last activity, vCard). Each
// recorded file is the byte stream one Prosody sent on one outgoing S2S
// connection, from `<?xml` on, exactly as the server wrote it.
//
// Environment: ISTHMUS_CAPTURE_OUT (folder), ISTHMUS_CAPTURE_NAME (file name
// prefix, default "prosody"), ISTHMUS_CAPTURE_SEED (default 1),
// ISTHMUS_CAPTURE_DOMAINS (two domains, default "a.test,b.test"),
// ISTHMUS_CAPTURE_DURATION (default 2m), ISTHMUS_CAPTURE_USERS (per side,
// default 5).
package capture
