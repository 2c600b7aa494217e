package gateway

import (
	"fmt"
	"regexp"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// dropReason says why the gateway did not pass a stanza on. The stanza is
// then bounced to its sender with the reason's condition when an error
// reply is possible (a message, an iq get or set, a subscription request
// that is not itself an error: counters.bounced), and discarded otherwise
// (counters.dropped). Every stanza accepted from a local server is thus
// either handed on (to the link, to a local server, or to the presence
// mirror) or counted under one reason, in one of the two.
type dropReason uint8

const (
	// Stanzas from local servers, bounced to the local sender:
	dropLinkFull    dropReason = iota // the link queue holds link.spool_max_bytes of stanzas
	dropSenderFull                    // the sender holds link.sender_max_bytes of the link queue
	dropSpoolError                    // the spool could not store it
	dropLinkExpired                   // not acknowledged by the peer within link.max_age
	dropRejected                      // refused at ingress by the S2S edge (with its own condition)
	dropUnencodable                   // beyond what the codec or the peer's decoder takes (compress.ErrUnencodable)
	// Stanzas for local servers (from the link, or our own bounces), as the
	// S2S pool reports them:
	dropLocalUnreachable // the local server could not be reached, or its stream died
	dropLocalTimeout     // connecting to the local server timed out
	dropLocalQueueFull   // the outgoing stream's queue (s2s.queue_limit) is full
	dropShuttingDown     // the gateway is stopping
	dropJIDMalformed     // no valid domain to route by
	// Stanzas from the link:
	dropMisrouted         // not from a remote domain to a local one
	dropBadFromLink       // not a stanza: never bounced
	dropOverLimitFromLink // over the local [s2s] limits: bounced to the remote sender
	// The presence mirror's own stanzas (never bounced):
	dropMirrorRefused // the link refused one (its queue is full)
	// Not a stanza:
	dropStateWrite // the presence mirror's state file could not be written

	numDropReasons
)

// dropReasonInfo holds each reason's label and the condition its bounces
// carry, indexed by dropReason.
var dropReasonInfo = []struct{ name, cond string }{
	dropLinkFull:          {"link-queue-full", s2s.CondResourceConstraint},
	dropSenderFull:        {"sender-share-full", s2s.CondResourceConstraint},
	dropSpoolError:        {"spool-error", s2s.CondResourceConstraint},
	dropLinkExpired:       {"link-expired", s2s.CondRemoteServerTimeout},
	dropRejected:          {"rejected", s2s.CondBadRequest},
	dropUnencodable:       {"unencodable", s2s.CondPolicyViolation},
	dropLocalUnreachable:  {"local-unreachable", s2s.CondRemoteServerNotFound},
	dropLocalTimeout:      {"local-timeout", s2s.CondRemoteServerTimeout},
	dropLocalQueueFull:    {"local-queue-full", s2s.CondResourceConstraint},
	dropShuttingDown:      {"shutting-down", s2s.CondServiceUnavailable},
	dropJIDMalformed:      {"jid-malformed", s2s.CondJIDMalformed},
	dropMisrouted:         {"misrouted-from-link", s2s.CondItemNotFound},
	dropBadFromLink:       {"bad-stanza-from-link", ""},
	dropOverLimitFromLink: {"over-limit-from-link", s2s.CondPolicyViolation},
	dropMirrorRefused:     {"mirror-link-full", ""},
	dropStateWrite:        {"presence-state-write", ""},
}

func init() {
	// Like tailscale derp's dropReason: the table and the enum must not
	// drift apart, or metrics would silently miss a reason.
	if len(dropReasonInfo) != int(numDropReasons) {
		panic(fmt.Sprintf("gateway: %d drop reasons, %d described", numDropReasons, len(dropReasonInfo)))
	}
	for r, d := range dropReasonInfo {
		if !labelSafe.MatchString(d.name) {
			panic(fmt.Sprintf("gateway: drop reason %d has no label", r))
		}
	}
}

func (r dropReason) String() string { return dropReasonInfo[r].name }

// cond is the stanza error condition bounces for r carry.
func (r dropReason) cond() string { return dropReasonInfo[r].cond }

// poolReason maps the condition the S2S pool bounced a stanza with to its
// reason.
func poolReason(cond string) dropReason {
	switch cond {
	case s2s.CondRemoteServerTimeout:
		return dropLocalTimeout
	case s2s.CondResourceConstraint:
		return dropLocalQueueFull
	case s2s.CondServiceUnavailable:
		return dropShuttingDown
	case s2s.CondJIDMalformed:
		return dropJIDMalformed
	}
	return dropLocalUnreachable
}

var labelSafe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// shortReason keeps a reason that is a short token (a condition, a limit)
// and makes anything else (an error text) "other", so label values and
// counter keys stay few.
func shortReason(r string) string {
	if r != "" && !labelSafe.MatchString(r) {
		return "other"
	}
	return r
}
