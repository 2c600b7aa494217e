package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// MirrorStats is what the presence mirror reports for metrics and the
// status page (zero when the mirror is off).
type MirrorStats struct {
	Enabled              bool   `json:"enabled"`
	Entries              int    `json:"entries"`               // contact resources whose presence the mirror holds (both tables)
	Local, Remote        int    `json:"-"`                     // this side's contacts, the other side's
	DuplicatesSuppressed uint64 `json:"duplicates_suppressed"` // presences not sent: same content already delivered
	FanoutAbsorbed       uint64 `json:"fanout_absorbed"`       // presences carried inside one fan-out instead of alone
	ProbesAnsweredLocal  uint64 `json:"probes_answered_local"` // probes answered from the mirror
	ProbesForwarded      uint64 `json:"probes_forwarded"`      // probes sent over the link
	CapsAnsweredLocal    uint64 `json:"caps_answered_local"`   // disco#info answered from the caps cache
	CapsBadHash          uint64 `json:"-"`                     // disco#info results whose hash did not match the ver
	CapsRefused          uint64 `json:"-"`                     // disco#info results refused by the XEP-0115 checks
	CapsUnverifiable     uint64 `json:"-"`                     // disco#info results no known hash algorithm verifies
	Full                 uint64 `json:"-"`                     // presence passed through: a table at max_entries
	FullBytes            uint64 `json:"-"`                     // fan-outs sent plain, mirror stanzas not kept: a table at max_bytes
	Unmirrored           uint64 `json:"-"`                     // recipients the peer sent plain presence (its table at max_bytes)
}

func (g *Gateway) mirrorStats() MirrorStats {
	c, local, remote, ok := g.PresenceCounters()
	if !ok {
		return MirrorStats{}
	}
	return MirrorStats{
		Enabled: true, Entries: local + remote, Local: local, Remote: remote,
		DuplicatesSuppressed: c.Duplicates, FanoutAbsorbed: c.Absorbed,
		ProbesAnsweredLocal: c.ProbesAnswered, ProbesForwarded: c.ProbesForwarded, CapsAnsweredLocal: c.CapsHits,
		CapsBadHash: c.CapsBadHash, CapsRefused: c.CapsRefused, CapsUnverifiable: c.CapsUnverifiable,
		Full: c.Full, FullBytes: c.FullBytes, Unmirrored: c.Unmirrored,
	}
}

// spoolBytes is the stanza bytes in the link's disk spool (0 without one).
func (g *Gateway) spoolBytes() int64 { return g.link.Stats().SpoolBytes }

// metricsHandler serves /metrics from a registry of its own (the demo runs
// two gateways in one process, so nothing goes to the global registry).
type metricsHandler struct {
	reg *prometheus.Registry
	h   http.Handler
}

func newMetricsHandler(g *Gateway) *metricsHandler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{g: g})
	reg.MustRegister(collectors.NewGoCollector())
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metricsHandler{reg: reg, h: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
}

// Registry returns the gateway's metrics registry (for tests and embedding).
func (g *Gateway) Registry() *prometheus.Registry { return g.ops.metrics.reg }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("isthmus_"+name, help, labels, nil)
}

// The metrics. Direction "out" is local servers → link, "in" link → local
// servers.
var (
	mInfo       = desc("gateway_info", "Gateway identity; always 1.", "name")
	mStanzas    = desc("stanzas_total", "Stanzas carried, by direction and kind (message, presence, iq).", "direction", "kind")
	mRaw        = desc("raw_bytes_total", "Bytes the carried stanzas take as plain S2S XML, by direction.", "direction")
	mLinkBytes  = desc("link_bytes_total", "Link session frame bytes (codec output and session overhead), by direction.", "direction")
	mWire       = desc("wire_bytes_total", "Estimated bytes on the wire (TLS records plus TCP/IP headers), by direction.", "direction")
	mRatio      = desc("savings_ratio", "Raw bytes per wire byte since start, by direction (0 before traffic).", "direction")
	mLinkUp     = desc("link_up", "1 when the link session to the peer is established.")
	mConnects   = desc("link_connects_total", "Link connections that completed the handshake.")
	mResumes    = desc("link_resumes_total", "Link reconnections that resumed the session with frames to resend.")
	mEpochs     = desc("link_epoch_restarts_total", "Times the compression context restarted because the peer lost it.")
	mHSFail     = desc("link_handshake_failures_total", "Link connections whose TLS handshake failed.")
	mRetrans    = desc("link_retransmitted_bytes_total", "DATA frame bytes sent again after a resume.")
	mRTT        = desc("link_rtt_seconds", "Smoothed time from sending a DATA frame to its acknowledgement (includes the peer's ack delay); 0 before the first sample.")
	mQueue      = desc("link_queue_stanzas", "Stanzas in the link queue: waiting for a frame (by priority: high = iq and message, low = presence), or sent and unacknowledged (priority all).", "state", "priority")
	mQueueBytes = desc("link_queue_bytes", "Stanza bytes waiting or unacknowledged.")
	mOldest     = desc("link_queue_oldest_age_seconds", "Age of the oldest stanza waiting or unacknowledged; 0 when none.")
	mSpool      = desc("spool_bytes", "Bytes in the on-disk spool of unacknowledged stanzas.")
	mAccepted   = desc("accepted_stanzas_total", "Stanzas accepted from local servers, by kind; each is handed on, bounced or dropped.", "kind")
	mDelivered  = desc("delivered_stanzas_total", "Stanzas written to local servers' streams (from the link, and bounces), by kind.", "kind")
	mDrops      = desc("dropped_stanzas_total", "Stanzas discarded without an error reply (none is possible: errors, results, presence), by reason.", "reason")
	mBounces    = desc("bounced_stanzas_total", "Stanzas bounced to their sender with an error, by reason and XMPP condition.", "reason", "condition")
	mReplyWaits = desc("s2s_reply_waits_total", "Times a bounce to a local sender waited for room on the stream to that sender's server, and so stopped reading the inbound stream it came from (back-pressure).")
	mPoolQueue  = desc("s2s_queue_stanzas", "Stanzas queued on outgoing S2S streams to local servers: forwarded from the link, or replies (bounces) to local senders.", "class")
	mEvents     = desc("s2s_events_total", "S2S edge events (in-open, in-auth, out-open, out-auth, out-fail, ...), by event and short reason.", "event", "reason")
	mStreams    = desc("s2s_connections", "S2S connections with local servers: in/connected (TCP), out/dialback, out/established.", "direction", "state")
	mPairs      = desc("s2s_inbound_verified_pairs", "Domain pairs verified by dialback on open incoming S2S streams.")
	mMirror     = desc("presence_mirror_entries", "Contact resources whose presence the mirror holds, by table (local: this side's contacts, remote: the other side's).", "table")
	mDup        = desc("presence_duplicates_suppressed_total", "Presence stanzas not sent over the link because the mirror held the same presence.")
	mAbsorbed   = desc("presence_fanout_absorbed_total", "Presence stanzas carried inside one fan-out to several recipients instead of crossing alone.")
	mProbes     = desc("presence_probes_total", "Presence probes from local servers, by how they were handled (answered_locally, forwarded).", "result")
	mCaps       = desc("caps_disco_answered_locally_total", "Entity-capabilities disco#info queries answered from the cache.")
	mQDrops     = desc("link_queue_dropped_total", "Stanzas the link queue removed without sending, by reason (coalesced: a newer presence replaced it; presence_full; sender_full: the sender holds link.sender_max_bytes; expired, expired_presence, refused; unencodable: too big for the peer's decoder, refused when queued or taken out of a batch).", "reason")
	mProtoErr   = desc("link_protocol_errors_total", "Frames from the peer refused as protocol errors; each dropped its link connection.")
	mCapsNot    = desc("caps_disco_results_not_cached_total", "Entity-capabilities disco#info results not cached, by reason (bad_hash: the hash did not match the ver; refused: failed the XEP-0115 checks; unverifiable: no known hash algorithm, or too many queries pending).", "reason")
	mMirrorFull = desc("presence_mirror_full_total", "Presence the mirror passed through or did not keep because a table was full, by limit (max_entries: presence sent alone; max_bytes: fan-outs sent as plain presence, mirror stanzas not kept).", "limit")
	mDictErr    = desc("link_dictionary_errors_total", "Learned dictionaries that could not be used: a file in state_dir/learn missing, corrupt or unwritable, or an epoch the peer primed with one this side does not have (it then asks for a new epoch).")
	mDictUsed   = desc("link_epoch_learned_dictionary", "1 when the current epoch of a direction (out: what this side sends, in: what it receives) is primed with a dictionary learned from the link's traffic, 0 with the built-in one.", "direction")
	mUnmirrored = desc("presence_unmirrored_total", "Recipients removed from the remote table because the peer sent them plain presence (its table was at max_bytes).")
)

// collector reads the gateway's figures at scrape time.
type collector struct{ g *Gateway }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mInfo, mStanzas, mRaw, mLinkBytes, mWire, mRatio, mLinkUp, mConnects, mResumes, mEpochs,
		mHSFail, mRetrans, mRTT, mQueue, mQueueBytes, mOldest, mSpool, mAccepted, mDelivered, mDrops, mBounces, mPoolQueue, mReplyWaits, mEvents, mStreams, mPairs, mMirror, mDup, mAbsorbed, mProbes, mCaps, mQDrops,
		mProtoErr, mCapsNot, mMirrorFull, mUnmirrored, mDictErr, mDictUsed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	s := g.Snapshot()
	ls := g.link.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(mInfo, 1, s.Name)
	for _, dir := range []struct {
		name string
		d    Direction
	}{{"out", s.Out}, {"in", s.In}} {
		for _, k := range []string{"message", "presence", "iq"} {
			counter(mStanzas, float64(dir.d.Stanzas[k]), dir.name, k)
		}
		other := uint64(0)
		for k, v := range dir.d.Stanzas {
			if k != "message" && k != "presence" && k != "iq" {
				other += v
			}
		}
		if other > 0 {
			counter(mStanzas, float64(other), dir.name, "other")
		}
		counter(mRaw, float64(dir.d.RawBytes), dir.name)
		counter(mLinkBytes, float64(dir.d.LinkBytes), dir.name)
		counter(mWire, float64(dir.d.WireBytes), dir.name)
		gauge(mRatio, dir.d.Ratio(), dir.name)
	}
	gauge(mLinkUp, b2f(s.Link.Up))
	counter(mConnects, float64(s.Link.Connects))
	counter(mResumes, float64(s.Link.Resumes))
	counter(mEpochs, float64(s.Link.EpochChanges))
	counter(mHSFail, float64(s.Link.HandshakeFailures))
	counter(mRetrans, float64(s.Link.Retransmitted))
	gauge(mRTT, ls.RTT.Seconds())
	gauge(mQueue, float64(ls.WaitingHigh), "waiting", "high")
	gauge(mQueue, float64(ls.WaitingLow), "waiting", "low")
	gauge(mQueue, float64(ls.Unacked), "unacked", "all")
	gauge(mQueueBytes, float64(ls.QueuedBytes))
	age := 0.0
	if !ls.Oldest.IsZero() {
		age = max(0, time.Since(ls.Oldest).Seconds())
	}
	gauge(mOldest, age)
	gauge(mSpool, float64(ls.SpoolBytes))
	for reason, n := range ls.Drops.All() {
		counter(mQDrops, float64(n), reason)
	}
	counter(mProtoErr, float64(ls.ProtocolErrors))
	dictErrs := ls.DictErrors
	if g.learn != nil {
		dictErrs += g.learn.Stats().Errors
	}
	counter(mDictErr, float64(dictErrs))
	gauge(mDictUsed, b2f(!ls.Dict.IsZero()), "out")
	gauge(mDictUsed, b2f(!ls.PeerDict.IsZero()), "in")

	for _, m := range []struct {
		d *prometheus.Desc
		v map[string]uint64
	}{{mAccepted, s.Accepted}, {mDelivered, s.Delivered}} {
		for _, k := range []string{"message", "presence", "iq"} {
			counter(m.d, float64(m.v[k]), k)
		}
		if other := sum(m.v) - m.v["message"] - m.v["presence"] - m.v["iq"]; other > 0 {
			counter(m.d, float64(other), "other")
		}
	}
	// Every reason has its series from the start (dropReasonInfo is checked
	// against the enum at init).
	bounces := g.c.bounceCounts()
	for r := range numDropReasons {
		counter(mDrops, float64(s.Drops[r.String()]), r.String())
		if c := r.cond(); c != "" {
			if _, ok := bounces[bounceKey{r, c}]; !ok {
				bounces[bounceKey{r, c}] = 0
			}
		}
	}
	for k, v := range bounces {
		counter(mBounces, float64(v), k.reason.String(), shortReason(k.cond))
	}
	ps := g.pool.Stats()
	gauge(mPoolQueue, float64(ps.Queued), "forward")
	gauge(mPoolQueue, float64(ps.Replies), "reply")
	counter(mReplyWaits, float64(ps.ReplyWaits))
	events := map[eventKey]float64{}
	for _, k := range s2s.EventKinds {
		events[eventKey{kind: k}] = 0
	}
	for k, v := range s.Events {
		kind, reason, _ := strings.Cut(k, ":")
		events[eventKey{s2s.EventKind(kind), reason}] += float64(v)
	}
	for k, v := range events {
		counter(mEvents, v, string(k.kind), k.reason)
	}
	st := g.ops.streams()
	gauge(mStreams, float64(st.InConnections), "in", "connected")
	gauge(mPairs, float64(st.InVerified))
	gauge(mStreams, float64(st.OutConnecting), "out", "dialback")
	gauge(mStreams, float64(st.OutEstablish), "out", "established")

	ms := g.mirrorStats()
	gauge(mMirror, float64(ms.Local), "local")
	gauge(mMirror, float64(ms.Remote), "remote")
	counter(mDup, float64(ms.DuplicatesSuppressed))
	counter(mAbsorbed, float64(ms.FanoutAbsorbed))
	counter(mCaps, float64(ms.CapsAnsweredLocal))
	counter(mProbes, float64(ms.ProbesAnsweredLocal), "answered_locally")
	counter(mProbes, float64(ms.ProbesForwarded), "forwarded")
	counter(mCapsNot, float64(ms.CapsBadHash), "bad_hash")
	counter(mCapsNot, float64(ms.CapsRefused), "refused")
	counter(mCapsNot, float64(ms.CapsUnverifiable), "unverifiable")
	counter(mMirrorFull, float64(ms.Full), "max_entries")
	counter(mMirrorFull, float64(ms.FullBytes), "max_bytes")
	counter(mUnmirrored, float64(ms.Unmirrored))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
