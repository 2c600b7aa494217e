// Package sim simulates the XMPP servers on both sides of an isthmus link
// and the people using them, so that `isthmus demo`, benchmarks and tests
// have S2S traffic that looks like the real thing.
//
// # Model
//
// NewPair builds two servers, one per side (a.test and b.test by
// default), each with Scenario.UsersA/UsersB accounts. Every account has
// one client: a program (Conversations, Gajim, Dino, Profanity, Monal,
// Psi+) in one of a few versions, with its real-looking resource
// ("Conversations.Ab3x", "gajim.8KQ2Z1X0", "dino.4f2a9c01"), its XEP-0115
// caps whose ver is the true SHA-1 of the identity and feature list it
// answers disco#info with, and most accounts have an avatar whose SHA-1
// appears in vcard-temp:x:update. Rosters span the link only: each user
// has Scenario.Contacts users of the other side with subscription both,
// and the relation is symmetric, so both servers agree on who may see
// whom.
//
// Time is virtual. Each server keeps a queue of events drawn from
// exponential distributions (means in scenario.go, divided by
// Scenario.Intensity), seeded from Scenario.Seed, so a run is a pure
// function of the seed and of the times and stanzas fed in:
//
//   - login: probes to every contact (bare to bare, as Prosody sends
//     them), then the initial presence fanned out, one stanza per contact,
//     then receipts for what waited in offline storage. Half the users log
//     in during the first 10 s; everyone alternates sessions and absences
//     of 150 s on average.
//   - presence change: show (away, xa, dnd, chat), status text, sometimes
//     idle (XEP-0319) and rarely a new avatar, fanned out to all contacts.
//   - logout: unavailable fanned out, sometimes with Prosody's
//     "Disconnected: ..." status.
//   - chat: a burst of 1-3 messages to a contact (mostly one seen online),
//     each often preceded by a composing notification, carrying body,
//     receipt request, markable, origin-id and active.
//   - XEP-0199 pings: server to server every 60 s, and now and then
//     client to client.
//
// Handle plays the receiving server and its clients: it answers probes
// from the presence of the online resource (with Prosody's delay stamp),
// with unavailable for an offline contact, and with unsubscribed for a
// stranger; it returns receipts for messages to online users and stores
// the rest offline; it schedules chat markers and replies as later
// events; on a presence with an unknown caps ver it asks disco#info, on an
// unknown avatar hash it fetches the vCard or the XEP-0084 metadata and
// then the data; it answers iqs to the domain, to accounts and to online
// clients as Prosody and those clients would, and everything else with
// the stanza error a server returns (service-unavailable, item-not-found,
// forbidden, bad-request). Anything unparseable or misaddressed is
// dropped and counted.
//
// # Plans
//
// Plan fixes a run's traffic in advance: it runs the pair back to back
// (PlanDelay between them) and records every stanza each side sends, with
// its time. The demo replays a plan instead of driving the servers live,
// so what is offered depends only on the seed and the duration (a longer
// plan starts with a shorter one), not on when the link under test
// delivers; answers are those the plan's own arrivals caused. A Tracker
// from NewTracker counts a replay with Offered and Arrived.
//
// Stanzas are serialized as they appear in a jabber:server stream: no
// xmlns on the top element, single-quoted attributes.
//
// # Accounting
//
// The Tracker shared by the pair records every chat message with a body
// when Step hands it out and when Handle on the other server receives
// it, by id: latency, loss (still pending), duplicates and reordering
// per sender/recipient pair. It also counts probes and their answers,
// and iq requests and their results, per direction.
//
// Servers are pure state machines with no goroutines, sockets or clock,
// and are not safe for concurrent use; the Tracker is.
package sim
