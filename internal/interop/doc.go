// Package interop holds end-to-end tests against real XMPP servers as
// Debian ships them, joined through a pair of isthmus gateways over the
// link emulator and driven by real XMPP clients:
//
//   - TestProsodyThroughGateways: two Prosody servers (internal/prosodytest);
//   - TestEjabberdProsodySecure: ejabberd (internal/ejabberdtest) and Prosody
//     at their default-secure settings (STARTTLS required, certificates
//     from internal/testpki), every hop encrypted.
package interop
