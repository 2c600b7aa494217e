package gateway

import (
	"embed"
	"encoding/json"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/svgplot"
)

// The status page: status/index.html (a template, rendered with the
// current figures and charts, so it shows data without script) and
// status/status.js, which refreshes figures and charts every two seconds
// from /api/status and /chart/*.svg. Nothing is loaded from elsewhere: the
// page works on an air-gapped network.
//
//go:embed status/index.html status/status.js
var statusFS embed.FS

var statusTmpl = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"human": func(v any) string {
		switch n := v.(type) {
		case uint64:
			return svgplot.Human(float64(n))
		case int:
			return svgplot.Human(float64(n))
		case int64:
			return svgplot.Human(float64(n))
		case float64:
			return svgplot.Human(n)
		}
		return ""
	},
	"ratio": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"div60": func(n int) int { return n / 60 },
}).ParseFS(statusFS, "status/index.html"))

// Status is what the status page shows, as served at /api/status.
type Status struct {
	Snapshot
	Peer       string      `json:"peer"`
	Uptime     float64     `json:"uptime_s"`
	RTTms      float64     `json:"rtt_ms"`
	QueueBytes int         `json:"queue_bytes"`
	OldestAge  float64     `json:"oldest_age_s"`
	SpoolBytes int64       `json:"spool_bytes"`
	Mirror     MirrorStats `json:"mirror"`
	Streams    Streams     `json:"s2s"`
	Samples    []Sample    `json:"samples,omitempty"`
}

// Status returns the figures of the status page.
func (g *Gateway) Status() Status {
	ls := g.link.Stats()
	st := Status{
		Snapshot:   g.Snapshot(),
		Uptime:     time.Since(g.ops.started).Seconds(),
		RTTms:      float64(ls.RTT) / float64(time.Millisecond),
		QueueBytes: ls.QueuedBytes,
		SpoolBytes: g.spoolBytes(),
		Mirror:     g.mirrorStats(),
		Streams:    g.ops.streams(),
	}
	if !ls.Oldest.IsZero() {
		st.OldestAge = max(0, time.Since(ls.Oldest).Seconds())
	}
	st.Peer = g.peer
	return st
}

// History returns the per-second samples of the last window (at most an
// hour), oldest first.
func (g *Gateway) History(window time.Duration) []Sample {
	return g.ops.hist.since(time.Now().Add(-window))
}

const (
	colorOutRaw  = "#d9480f"
	colorOutWire = "#f59f00"
	colorInRaw   = "#1864ab"
	colorInWire  = "#3bc9db"
)

// maxPoints bounds the points per chart line: a chart is 720 pixels wide.
const maxPoints = 600

// thin keeps at most maxPoints samples, evenly spaced, and the last one.
func thin(ss []Sample) []Sample {
	if len(ss) <= maxPoints {
		return ss
	}
	step := (len(ss) + maxPoints - 1) / maxPoints
	out := make([]Sample, 0, maxPoints+1)
	for i := len(ss) - 1; i >= 0; i -= step {
		out = append(out, ss[i])
	}
	slices.Reverse(out)
	return out
}

// Charts of the status page.
func rateChart(ss []Sample, now time.Time) string {
	ss = thin(ss)
	avg := 5 // samples averaged per point: 5 s, more when thinned
	if len(ss) > 1 {
		avg = max(1, int(math.Round(5/ss[len(ss)-1].Time.Sub(ss[len(ss)-2].Time).Seconds())))
	}
	series := []svgplot.Series{
		{Name: "out raw", Color: colorOutRaw}, {Name: "out wire", Color: colorOutWire},
		{Name: "in raw", Color: colorInRaw, Dash: true}, {Name: "in wire", Color: colorInWire, Dash: true},
	}
	for i := avg; i < len(ss); i++ {
		a, b := ss[i-avg], ss[i]
		dt := b.Time.Sub(a.Time).Seconds()
		if dt <= 0 {
			continue
		}
		x := b.Time.Sub(now).Seconds()
		for j, v := range []float64{
			float64(b.OutRaw-a.OutRaw) / dt, float64(b.OutWire-a.OutWire) / dt,
			float64(b.InRaw-a.InRaw) / dt, float64(b.InWire-a.InWire) / dt,
		} {
			series[j].X = append(series[j].X, x)
			series[j].Y = append(series[j].Y, v)
		}
	}
	return svgplot.Chart{
		Title: "raw vs wire bytes per second (5 s average)", XLabel: "time", YLabel: "bytes/s",
		Series: series, YZero: true, XFormat: agoFormat,
	}.SVG()
}

func ratioChart(ss []Sample, now time.Time) string {
	ss = thin(ss)
	series := []svgplot.Series{{Name: "out (to peer)", Color: colorOutRaw}, {Name: "in (from peer)", Color: colorInRaw, Dash: true}}
	for _, s := range ss {
		x := s.Time.Sub(now).Seconds()
		if s.OutWire > 0 {
			series[0].X = append(series[0].X, x)
			series[0].Y = append(series[0].Y, float64(s.OutRaw)/float64(s.OutWire))
		}
		if s.InWire > 0 {
			series[1].X = append(series[1].X, x)
			series[1].Y = append(series[1].Y, float64(s.InRaw)/float64(s.InWire))
		}
	}
	return svgplot.Chart{
		Title: "savings ratio since start (raw / wire bytes)", XLabel: "time", YLabel: "ratio",
		Series: series, YZero: true, XFormat: agoFormat,
	}.SVG()
}

func agoFormat(v float64) string {
	if v > -0.5 {
		return "now"
	}
	return "-" + svgplot.Duration(-v)
}

// window reads ?window=SECONDS (60..3600, default 600).
func window(r *http.Request) time.Duration {
	w, err := strconv.Atoi(r.URL.Query().Get("window"))
	if err != nil || w <= 0 {
		w = 600
	}
	return time.Duration(min(max(w, 60), historySize)) * time.Second
}

func (g *Gateway) statusRoutes(mux *http.ServeMux) {
	secure := func(w http.ResponseWriter) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		win := window(r)
		now := time.Now()
		ss := g.History(win)
		data := struct {
			Status
			Window          int
			Windows         []int
			Rate, Ratio     template.HTML
			QueuedTotal     int
			LinkState       string
			OutRatio, InRat float64
		}{
			Status: g.Status(), Window: int(win.Seconds()), Windows: []int{60, 600, 3600},
			Rate: template.HTML(rateChart(ss, now)), Ratio: template.HTML(ratioChart(ss, now)),
		}
		data.QueuedTotal = data.Link.Waiting + data.Link.Unacked
		data.LinkState = "down"
		if data.Link.Up {
			data.LinkState = "up"
		}
		data.OutRatio, data.InRat = data.Out.Ratio(), data.In.Ratio()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusTmpl.Execute(w, data); err != nil {
			g.log.Warn("gateway: status page", "err", err)
		}
	})
	mux.HandleFunc("GET /status.js", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		b, _ := statusFS.ReadFile("status/status.js")
		w.Write(b)
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		st := g.Status()
		if r.URL.Query().Has("window") {
			st.Samples = g.History(window(r))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /chart/{name}", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		now := time.Now()
		ss := g.History(window(r))
		var svg string
		switch r.PathValue("name") {
		case "rate.svg":
			svg = rateChart(ss, now)
		case "ratio.svg":
			svg = ratioChart(ss, now)
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write([]byte(svg))
	})
	mux.Handle("GET /metrics", g.ops.metrics.h)
}
