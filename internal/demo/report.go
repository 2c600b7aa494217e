package demo

import (
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/svgplot"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
)

// WriteReport writes a self-contained HTML report of a run: the summary
// table and SVG plots of cumulative raw vs wire bytes per direction, link
// utilization per second, and the distribution of chat message latency.
// It loads nothing from elsewhere (no script, no fonts, no images).
func WriteReport(w io.Writer, r Result) error {
	type dirRow struct {
		Name     string
		D        gateway.Direction
		Ratio    string
		Messages sim.DirSummary
	}
	data := struct {
		R                    Result
		Generated            string
		Rate                 string
		Dirs                 []dirRow
		Bytes, Util, Latency template.HTML
		BytesB, LatencyB     template.HTML
		WorkloadS, DrainS    string
		EmuAB, EmuBA         string
		TotalRaw, TotalWire  uint64
		TotalRatio           string
		SamplesN             int
	}{
		R:         r,
		Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Rate:      rateText(r.RateBPS),
		Dirs: []dirRow{
			{"a → b", r.A2B, fmt.Sprintf("%.1f×", r.A2B.Ratio()), r.Messages.A2B},
			{"b → a", r.B2A, fmt.Sprintf("%.1f×", r.B2A.Ratio()), r.Messages.B2A},
		},
		Bytes:     template.HTML(cumulativeChart("a → b: cumulative bytes", r.Samples, func(s Sample) Bytes { return s.A2B })),
		BytesB:    template.HTML(cumulativeChart("b → a: cumulative bytes", r.Samples, func(s Sample) Bytes { return s.B2A })),
		Util:      template.HTML(utilizationChart(r)),
		Latency:   template.HTML(latencyHistogram("a → b: chat message latency", r.Latencies[sim.A2B], "#d9480f")),
		LatencyB:  template.HTML(latencyHistogram("b → a: chat message latency", r.Latencies[sim.B2A], "#1864ab")),
		WorkloadS: fmt.Sprintf("%.0f", r.Duration.Seconds()),
		DrainS:    fmt.Sprintf("%.1f", r.Drained.Seconds()),
		TotalRaw:  r.A2B.RawBytes + r.B2A.RawBytes,
		TotalWire: r.A2B.WireBytes + r.B2A.WireBytes,
		SamplesN:  len(r.Samples),
	}
	if data.TotalWire > 0 {
		data.TotalRatio = fmt.Sprintf("%.1f×", float64(data.TotalRaw)/float64(data.TotalWire))
	}
	return reportTmpl.Execute(w, data)
}

func rateText(bps int64) string {
	switch {
	case bps <= 0:
		return "unlimited"
	case bps >= 1e6:
		return fmt.Sprintf("%g Mbit/s", float64(bps)/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%g kbit/s", float64(bps)/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

func cumulativeChart(title string, ss []Sample, dir func(Sample) Bytes) string {
	series := []svgplot.Series{
		{Name: "raw (plain S2S XML)", Color: "#c92a2a"},
		{Name: "link (after codec)", Color: "#5f3dc4", Dash: true},
		{Name: "wire (TLS + TCP/IP)", Color: "#2b8a3e"},
	}
	for _, s := range ss {
		b := dir(s)
		x := s.T.Seconds()
		for i, v := range []uint64{b.Raw, b.Link, b.Wire} {
			series[i].X = append(series[i].X, x)
			series[i].Y = append(series[i].Y, float64(v))
		}
	}
	return svgplot.Chart{Title: title, XLabel: "time since start", YLabel: "bytes", Series: series, YZero: true, XFormat: svgplot.Duration}.SVG()
}

// utilizationChart plots each direction's wire bits per second, averaged
// over utilAvg samples (a paced write may put a whole batch on the wire at
// once and then wait), as a share of the link rate (or in bit/s when the
// link is unlimited).
func utilizationChart(r Result) string {
	const utilAvg = 3
	series := []svgplot.Series{{Name: "a → b", Color: "#d9480f"}, {Name: "b → a", Color: "#1864ab", Dash: true}}
	title, ylabel := "link utilization (wire bits per second / link rate, 3 s average)", "% of link rate"
	scale := func(bps float64) float64 { return 100 * bps / float64(r.RateBPS) }
	if r.RateBPS <= 0 {
		title, ylabel = "wire bits per second (3 s average)", "bit/s"
		scale = func(bps float64) float64 { return bps }
	}
	for i := 1; i < len(r.Samples); i++ {
		a, b := r.Samples[max(0, i-utilAvg)], r.Samples[i]
		dt := (b.T - a.T).Seconds()
		if dt <= 0 {
			continue
		}
		x := b.T.Seconds()
		series[0].X = append(series[0].X, x)
		series[0].Y = append(series[0].Y, scale(float64(b.A2B.Wire-a.A2B.Wire)*8/dt))
		series[1].X = append(series[1].X, x)
		series[1].Y = append(series[1].Y, scale(float64(b.B2A.Wire-a.B2A.Wire)*8/dt))
	}
	return svgplot.Chart{Title: title, XLabel: "time since start", YLabel: ylabel, Series: series, YZero: true, XFormat: svgplot.Duration}.SVG()
}

// latencyBuckets are the upper bounds of the latency histogram's bars.
var latencyBuckets = []time.Duration{
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	20 * time.Second, 60 * time.Second, 2 * time.Minute,
}

func latencyHistogram(title string, lat []time.Duration, color string) string {
	labels := make([]string, len(latencyBuckets)+1)
	counts := make([]float64, len(latencyBuckets)+1)
	for i, b := range latencyBuckets {
		labels[i] = "≤" + short(b)
	}
	labels[len(latencyBuckets)] = ">" + short(latencyBuckets[len(latencyBuckets)-1])
	for _, l := range lat {
		i := 0
		for i < len(latencyBuckets) && l > latencyBuckets[i] {
			i++
		}
		counts[i]++
	}
	return svgplot.Histogram{Title: fmt.Sprintf("%s (%d messages)", title, len(lat)), XLabel: "send to delivery", YLabel: "messages",
		Labels: labels, Counts: counts, Color: color}.SVG()
}

func short(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return svgplot.Duration(d.Seconds())
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>isthmus demo report: {{.R.Profile}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1000px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
td, th { border-bottom: 1px solid #ddd; padding: .25em .9em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.big { font-size: 1.3em; font-weight: bold; }
svg { max-width: 100%; height: auto; border: 1px solid #eee; margin: .3em 0; }
.muted { color: #777; font-size: .9em; }
</style>
</head>
<body>
<h1>isthmus demo report</h1>
<p>Link profile <b>{{.R.Profile}}</b> ({{.Rate}}), {{.WorkloadS}} s of simulated XMPP traffic, queues drained in {{.DrainS}} s.
Both directions together: {{.TotalRaw}} bytes of plain S2S XML crossed as {{.TotalWire}} bytes on the wire —
<span class="big">{{.TotalRatio}} fewer bytes</span>.</p>

<h2>Summary</h2>
<table>
<tr><th></th>{{range .Dirs}}<th>{{.Name}}</th>{{end}}</tr>
<tr><td>message stanzas</td>{{range .Dirs}}<td>{{index .D.Stanzas "message"}}</td>{{end}}</tr>
<tr><td>presence stanzas</td>{{range .Dirs}}<td>{{index .D.Stanzas "presence"}}</td>{{end}}</tr>
<tr><td>iq stanzas</td>{{range .Dirs}}<td>{{index .D.Stanzas "iq"}}</td>{{end}}</tr>
<tr><td>raw bytes (plain S2S XML)</td>{{range .Dirs}}<td>{{.D.RawBytes}}</td>{{end}}</tr>
<tr><td>link bytes (after the codec)</td>{{range .Dirs}}<td>{{.D.LinkBytes}}</td>{{end}}</tr>
<tr><td>wire bytes (TLS + TCP/IP)</td>{{range .Dirs}}<td>{{.D.WireBytes}}</td>{{end}}</tr>
<tr><td><b>savings (raw / wire)</b></td>{{range .Dirs}}<td><b>{{.Ratio}}</b></td>{{end}}</tr>
<tr><td>chat messages sent / delivered</td>{{range .Dirs}}<td>{{.Messages.Sent}} / {{.Messages.Delivered}}</td>{{end}}</tr>
<tr><td>lost / duplicated / reordered</td>{{range .Dirs}}<td>{{.Messages.Lost}} / {{.Messages.Duplicates}} / {{.Messages.Reordered}}</td>{{end}}</tr>
<tr><td>latency p50 / p90 / p99</td>{{range .Dirs}}<td>{{ms .Messages.P50}} / {{ms .Messages.P90}} / {{ms .Messages.P99}}</td>{{end}}</tr>
<tr><td>probes answered</td>{{range .Dirs}}<td>{{.Messages.ProbesAnswered}} / {{.Messages.Probes}}</td>{{end}}</tr>
<tr><td>iqs answered</td>{{range .Dirs}}<td>{{.Messages.IQsAnswered}} / {{.Messages.IQs}}</td>{{end}}</tr>
</table>
<p class="muted">Emulated link: a → b carried {{.R.Emu.AB.DeliveredBytes}} B, b → a {{.R.Emu.BA.DeliveredBytes}} B of TCP payload
({{.R.Emu.AB.RetransmittedBytes}} / {{.R.Emu.BA.RetransmittedBytes}} B resent after loss). Link connects {{.R.A.Link.Connects}}, resumes {{.R.A.Link.Resumes}}.</p>

<h2>Raw vs wire bytes</h2>
<div id="plot-bytes">{{.Bytes}}</div>
<div id="plot-bytes-b">{{.BytesB}}</div>

<h2>Link utilization</h2>
<div id="plot-util">{{.Util}}</div>

<h2>Message latency</h2>
<div id="plot-latency">{{.Latency}}</div>
<div id="plot-latency-b">{{.LatencyB}}</div>

<p class="muted">Generated {{.Generated}} by <code>isthmus demo --report</code>; {{.SamplesN}} samples, one a second.
Raw bytes are the stanzas as the sending server wrote them; wire bytes are what TLS wrote plus 52 bytes of TCP/IP header per estimated segment and delayed ACK.</p>
</body>
</html>
`))
