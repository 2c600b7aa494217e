package gateway

import (
	"log/slog"
	"net/http/httptest"
	"regexp"
	"testing"
)

// TestMetricsCountersScraped: the link's and the presence mirror's
// counters that have no other series are on /metrics, each with its
// labels, from the first scrape (a gateway New built, before Run).
func TestMetricsCountersScraped(t *testing.T) {
	pc, err := NewPairConfig(map[string]string{"a.test": "127.0.0.1:1"}, map[string]string{"b.test": "127.0.0.1:1"}, "a-secret-of-16-chars")
	if err != nil {
		t.Fatal(err)
	}
	pc.A.Link.Dial = "127.0.0.1:1"
	g, err := New(pc.A, Options{PrivateKey: pc.KeyA, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.s2sLn.Close()
	srv := httptest.NewServer(g.adminHandler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics")
	var want []string
	for reason := range g.link.Stats().Drops.All() {
		want = append(want, `isthmus_link_queue_dropped_total{reason="`+reason+`"}`)
	}
	want = append(want,
		`isthmus_link_queue_dropped_total{reason="unencodable"}`,
		`isthmus_link_protocol_errors_total`,
		`isthmus_caps_disco_results_not_cached_total{reason="bad_hash"}`,
		`isthmus_caps_disco_results_not_cached_total{reason="refused"}`,
		`isthmus_caps_disco_results_not_cached_total{reason="unverifiable"}`,
		`isthmus_presence_mirror_full_total{limit="max_entries"}`,
		`isthmus_presence_mirror_full_total{limit="max_bytes"}`,
		`isthmus_presence_unmirrored_total`,
		`isthmus_link_dictionary_errors_total`,
		`isthmus_link_epoch_learned_dictionary{direction="out"}`,
		`isthmus_link_epoch_learned_dictionary{direction="in"}`,
	)
	for _, series := range want {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` 0$`).MatchString(body) {
			t.Errorf("/metrics lacks %s 0", series)
		}
	}
}
