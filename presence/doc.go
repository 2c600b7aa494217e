// Package presence will hold the presence mirror: a pure state machine (events
// in, actions out, time passed in) that keeps the other side's presence, drops
// duplicates, answers probes locally and synthesizes unavailable on time-out.
//
// The foundation gateway passes presence through unchanged; the mirror is the
// subject of a later issue and plugs in at gateway.Router.
package presence
