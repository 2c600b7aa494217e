// Package interop holds end-to-end tests against real XMPP servers: two
// Prosody instances (internal/prosodytest) joined through a pair of isthmus
// gateways over the link emulator, driven by real XMPP clients.
package interop
