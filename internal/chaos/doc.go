// Package chaos holds the end-to-end reliability test of a gateway pair:
// two isthmus processes (`isthmus run`), the link between them through the
// emulator (link/emu relays in the test process, with loss and outages),
// and simulated local servers (gateway/s2s Server and Pool) whose clients
// send messages with unique ids both ways. Each gateway process is killed
// with SIGKILL and restarted once mid-stream. The receivers check that every
// id arrived exactly once and in order per (sender, recipient) pair and the
// test prints
//
//	lost=N duplicated=N reordered=N drain_s=X
//
// The short form (about 2,000 messages, TCP and QUIC) runs with `go test`;
// the full one (10,000 messages, outages every 20–40 s lasting 5–15 s) with
// `make chaos` (go test -run Chaos -chaos.full).
//
// BenchmarkEndToEndLAN measures throughput from a simulated local server
// through both gateways (link over the emulator's lan profile) to the other
// side, keeping at most 50,000 stanzas in flight (the simulated server's
// S2S queue bounces beyond 100,000). Measured 2026-11-30 on the 2-core
// machine: 72,600–74,400 stanzas/s (go test -run XXX -bench EndToEndLAN
// -benchtime 5s -count 3 ./internal/chaos).
//
// S2S without stream management (XEP-0198) has no acks: a stanza the local
// server wrote into the socket of a gateway that is killed before reading it
// is lost on the S2S hop, before the gateway accepted it. The test therefore
// pauses the killed side's local senders from 300 ms before the kill until
// the restarted gateway listens again (traffic the other way, the link and
// the spool stay busy), and resends what its own s2s.Pool bounced as never
// written.
package chaos
