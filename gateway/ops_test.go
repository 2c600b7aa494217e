package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// metricValue finds one sample of a gathered metric by name and labels.
func metricValue(t *testing.T, g *Gateway, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func TestMetricsLintAndValues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	const n = 20
	for i := range n {
		p.a.pool.Send(msg("alice@a.test/x", "bob@b.test", i))
		p.b.pool.Send(msg("bob@b.test/y", "alice@a.test", i))
	}
	waitFor(t, "delivery and acks", 20*time.Second, func() bool {
		ls := p.ga.link.Stats()
		return len(p.b.received()) >= n && len(p.a.received()) >= n && ls.Unacked == 0 && ls.RTT > 0
	})

	problems, err := testutil.CollectAndLint(&collector{g: p.ga})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
	// The whole registry (with the Go and process collectors) must gather.
	if _, err := p.ga.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"isthmus_stanzas_total", map[string]string{"direction": "out", "kind": "message"}, n},
		{"isthmus_stanzas_total", map[string]string{"direction": "in", "kind": "message"}, n},
		{"isthmus_raw_bytes_total", map[string]string{"direction": "out"}, 1},
		{"isthmus_link_bytes_total", map[string]string{"direction": "out"}, 1},
		{"isthmus_wire_bytes_total", map[string]string{"direction": "in"}, 1},
		{"isthmus_savings_ratio", map[string]string{"direction": "out"}, 0.01},
		{"isthmus_link_up", nil, 1},
		{"isthmus_link_connects_total", nil, 1},
		{"isthmus_link_rtt_seconds", nil, 1e-6},
		{"isthmus_s2s_connections", map[string]string{"direction": "in", "state": "connected"}, 1},
		{"isthmus_s2s_connections", map[string]string{"direction": "out", "state": "established"}, 1},
		{"isthmus_s2s_inbound_verified_pairs", nil, 1},
		{"isthmus_s2s_events_total", map[string]string{"event": "out-auth"}, 1},
		{"isthmus_gateway_info", map[string]string{"name": "a"}, 1},
		{"isthmus_accepted_stanzas_total", map[string]string{"kind": "message"}, n},
		{"isthmus_delivered_stanzas_total", map[string]string{"kind": "message"}, n},
	} {
		v, ok := metricValue(t, p.ga, c.name, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want >= %v", c.name, c.labels, v, ok, c.min)
		}
	}
	for _, name := range []string{"isthmus_link_queue_stanzas", "isthmus_link_queue_oldest_age_seconds", "isthmus_spool_bytes",
		"isthmus_presence_duplicates_suppressed_total", "isthmus_presence_probes_total", "isthmus_dropped_stanzas_total", "go_goroutines",
		"isthmus_link_queue_dropped_total", "isthmus_presence_mirror_entries", "isthmus_caps_disco_answered_locally_total",
		"isthmus_s2s_queue_stanzas", "isthmus_s2s_reply_waits_total"} {
		if _, ok := metricValue(t, p.ga, name, nil); !ok {
			t.Errorf("%s missing", name)
		}
	}
	// Every drop reason and S2S event kind has its series from the start,
	// and every reason that bounces has one with its condition.
	for r := range numDropReasons {
		if _, ok := metricValue(t, p.ga, "isthmus_dropped_stanzas_total", map[string]string{"reason": r.String()}); !ok {
			t.Errorf("isthmus_dropped_stanzas_total{reason=%q} missing", r)
		}
		if r.cond() == "" {
			continue
		}
		if _, ok := metricValue(t, p.ga, "isthmus_bounced_stanzas_total", map[string]string{"reason": r.String(), "condition": r.cond()}); !ok {
			t.Errorf("isthmus_bounced_stanzas_total{reason=%q,condition=%q} missing", r, r.cond())
		}
	}
	for _, k := range s2s.EventKinds {
		if _, ok := metricValue(t, p.ga, "isthmus_s2s_events_total", map[string]string{"event": string(k)}); !ok {
			t.Errorf("isthmus_s2s_events_total{event=%q} missing", k)
		}
	}

	// /metrics over HTTP, in the text format.
	srv := httptest.NewServer(p.ga.adminHandler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics")
	if !regexp.MustCompile(`(?m)^isthmus_stanzas_total\{direction="out",kind="message"\} 20$`).MatchString(body) {
		t.Errorf("/metrics lacks the out message count:\n%.2000s", body)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func TestStreamGauges(t *testing.T) {
	o := &ops{out: map[[2]string]*outStream{}}
	ev := func(kind s2s.EventKind, local, remote string, n int) {
		o.event(s2s.Event{Kind: kind, Local: local, Remote: remote, Bytes: n})
	}
	ev("out-open", "b.test", "a.test", 0)
	if s := o.streams(); s.OutConnecting != 1 || s.OutEstablish != 0 {
		t.Fatalf("after out-open: %+v", s)
	}
	ev("out-auth", "b.test", "a.test", 0)
	ev("out-fail", "b.test", "c.test", 0) // dial failed: no out-open
	if s := o.streams(); s.OutConnecting != 0 || s.OutEstablish != 1 {
		t.Fatalf("after out-auth: %+v", s)
	}
	ev("out-close", "b.test", "c.test", 0)
	ev("out-open", "b.test", "d.test", 0)
	ev("out-fail", "b.test", "d.test", 0) // dialback refused
	ev("out-close", "b.test", "d.test", 0)
	if s := o.streams(); s.OutConnecting != 0 || s.OutEstablish != 1 || len(o.out) != 1 {
		t.Fatalf("after failures: %+v, %d keys", s, len(o.out))
	}
	ev("out-close", "b.test", "a.test", 0)
	ev("in-auth", "a.test", "b.test", 0)
	ev("in-auth", "a.test", "c.test", 0)
	ev("in-close", "", "", 2)
	if s := o.streams(); s != (Streams{}) || len(o.out) != 0 {
		t.Fatalf("after closes: %+v, %d keys", s, len(o.out))
	}
}

func TestHistoryRing(t *testing.T) {
	h := newHistory(4)
	t0 := time.Unix(1000, 0)
	for i := range 6 {
		h.add(Sample{Time: t0.Add(time.Duration(i) * time.Second), OutRaw: uint64(i)})
	}
	got := h.since(t0.Add(-time.Hour))
	var raws []uint64
	for _, s := range got {
		raws = append(raws, s.OutRaw)
	}
	if !slices.Equal(raws, []uint64{2, 3, 4, 5}) {
		t.Fatalf("ring holds %v, want the latest 4 in order", raws)
	}
	if got := h.since(t0.Add(3500 * time.Millisecond)); len(got) != 2 || got[0].OutRaw != 4 {
		t.Fatalf("since: %v", got)
	}
}

func TestThin(t *testing.T) {
	ss := make([]Sample, historySize)
	for i := range ss {
		ss[i].OutRaw = uint64(i)
	}
	th := thin(ss)
	if len(th) > maxPoints+1 || len(th) < maxPoints/2 || th[len(th)-1].OutRaw != historySize-1 {
		t.Fatalf("thin: %d samples, last %d", len(th), th[len(th)-1].OutRaw)
	}
	for i := 1; i < len(th); i++ {
		if th[i].OutRaw <= th[i-1].OutRaw {
			t.Fatalf("thin: out of order at %d", i)
		}
	}
	if got := thin(ss[:10]); len(got) != 10 {
		t.Fatalf("thin shortened a short history to %d", len(got))
	}
}

func TestStatusPage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	g := p.ga
	// A minute of made-up history, then the page.
	now := time.Now()
	for i := range 60 {
		g.ops.hist.add(Sample{Time: now.Add(time.Duration(i-60) * time.Second), OutRaw: uint64(i * 1000), OutWire: uint64(i * 100), InRaw: uint64(i * 500), InWire: uint64(i * 100)})
	}
	srv := httptest.NewServer(g.adminHandler())
	defer srv.Close()
	page := get(t, srv.URL+"/")
	for _, want := range []string{"isthmus gateway", `id="chart-rate"`, `src="/status.js"`, "dials in-process (Options.LinkDial)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	pts := regexp.MustCompile(`data-name="out raw" data-points="(\d+)"`).FindStringSubmatch(page)
	if pts == nil {
		t.Fatalf("no out raw series on the page")
	}
	if n, _ := strconv.Atoi(pts[1]); n < 50 {
		t.Errorf("out raw series has %d points, want ~55", n)
	}
	if !strings.Contains(page, `data-name="out (to peer)" data-points="`) {
		t.Error("no ratio chart")
	}
	if regexp.MustCompile(`(src|href|url)\s*[=(]\s*["']?(https?:)?//`).MatchString(page) {
		t.Error("page loads something from another site")
	}
	js := get(t, srv.URL+"/status.js")
	if !strings.Contains(js, "/api/status") {
		t.Error("status.js does not poll /api/status")
	}
	var st Status
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/api/status?window=60")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Name != "a" || len(st.Samples) < 55 {
		t.Errorf("/api/status: name %q, %d samples", st.Name, len(st.Samples))
	}
	if svg := get(t, srv.URL+"/chart/ratio.svg?window=600"); !strings.Contains(svg, "<svg") || strings.Contains(svg, "no data yet") {
		t.Errorf("ratio chart: %.300s", svg)
	}
	if resp, _ := http.Get(srv.URL + "/chart/nope.svg"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown chart: %s", resp.Status)
	}
}

func TestDrainStopsAccepting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	p.a.pool.Send(msg("alice@a.test/x", "bob@b.test", 1))
	waitFor(t, "first delivery", 10*time.Second, func() bool { return len(p.b.received()) == 1 })

	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if left := p.ga.Drain(dctx); left != 0 {
		t.Fatalf("Drain left %d stanzas", left)
	}
	if c, err := net.DialTimeout("tcp", p.ga.S2SAddr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("gateway still accepts S2S connections after Drain")
	}
	// The open stream still carries stanzas.
	p.a.pool.Send(msg("alice@a.test/x", "bob@b.test", 2))
	waitFor(t, "delivery after Drain", 10*time.Second, func() bool { return len(p.b.received()) == 2 })
}

func TestReload(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	g := p.ga
	next := *g.cfg
	next.LocalDomains = map[string]string{"a.test": "127.0.0.1:1"}
	next.Link.RateBPS = 9600
	next.LogLevel = "debug"
	next.SummaryInterval = config.D(time.Minute)
	r := g.Reload(&next)
	if !slices.Equal(r.Applied, []string{"log_level", "summary_interval", "link.rate_bps"}) {
		t.Errorf("applied %v", r.Applied)
	}
	if !slices.Equal(r.NeedRestart, []string{"local_domains"}) {
		t.Errorf("need restart %v", r.NeedRestart)
	}
	if g.ops.summaryEvery.Load() != int64(time.Minute) {
		t.Error("summary interval not applied")
	}
	// Reloading the same file again changes nothing; the restart-only key
	// is still reported as different from what runs.
	r = g.Reload(&next)
	if len(r.Applied) != 0 || !slices.Equal(r.NeedRestart, []string{"local_domains"}) {
		t.Errorf("second reload: %+v", r)
	}
}

// BenchmarkScrape measures one /metrics scrape and one status page render
// of a running gateway with an hour of history.
func BenchmarkScrape(b *testing.B) {
	t := &testing.T{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	p := startPair(t, ctx, &wg)
	now := time.Now()
	for i := range historySize {
		p.ga.ops.hist.add(Sample{Time: now.Add(time.Duration(i-historySize) * time.Second), OutRaw: uint64(i * 1000), OutWire: uint64(i * 300)})
	}
	h := p.ga.adminHandler()
	for name, path := range map[string]string{"metrics": "/metrics", "status-page-1h": "/?window=3600"} {
		b.Run(name, func(b *testing.B) {
			var n int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				n = rec.Body.Len()
			}
			b.ReportMetric(float64(n), "resp-bytes")
		})
	}
}
