package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
)

// compareTransports are the transports `isthmus demo --compare` runs, in
// order.
var compareTransports = []string{"tcp", "quic", "datagram"}

// compareRun is one transport's run of a comparison.
type compareRun struct {
	Transport string
	Res       demo.Result
	Err       error
}

// runCompare runs the demo once per transport, one after another, with the
// same options (so the same planned traffic), and prints them side by side.
func runCompare(ctx context.Context, opts demo.Options, tty, asJSON bool) error {
	var runs []compareRun
	for _, tr := range compareTransports {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o := opts
		o.Transport = tr
		if tty {
			o.Progress = func(pr demo.Progress) { progressLine(os.Stderr, pr) }
		}
		fmt.Fprintf(os.Stderr, "isthmus demo --compare: running %s\n", tr)
		res, err := demo.Run(ctx, o)
		if tty {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		if err != nil && ctx.Err() != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo --compare: %s: %v\n", tr, err)
		}
		runs = append(runs, compareRun{tr, res, err})
	}
	if asJSON {
		return printCompareJSON(os.Stdout, runs)
	}
	printCompare(os.Stdout, runs)
	return nil
}

// dirOf returns r's figures for direction dir (sim.A2B or sim.B2A).
func dirOf(r demo.Result, dir int) (d struct {
	raw, link, est, st uint64
	air                int64
	msgs               demoMessagesSrc
}) {
	x, m := r.A2B, r.Messages.A2B
	if dir == sim.B2A {
		x, m = r.B2A, r.Messages.B2A
	}
	d.raw, d.link, d.est, d.st, d.air, d.msgs = x.RawBytes, x.LinkBytes, x.WireBytes, x.StanzasTotal, r.Air[dir], m
	return d
}

// wireOf is the wire bytes of a direction: what occupied the emulated
// link (IP headers, pure ACKs and TCP's retransmissions included: the same
// ruler for every transport), or the gateway's own estimate when the run
// has no such count.
func wireOf(r demo.Result, dir int) uint64 {
	d := dirOf(r, dir)
	if d.air > 0 {
		return uint64(d.air)
	}
	return d.est
}

// fixedPerFrame is what the wire costs beyond the link frames (framing,
// TLS or Noise records, TCP/IP or UDP headers, ACKs, handshakes), per
// frame sent.
func fixedPerFrame(r demo.Result, dir int) (float64, bool) {
	d, w := dirOf(r, dir), wireOf(r, dir)
	if r.Frames[dir] == 0 || w < d.link {
		return 0, false
	}
	return float64(w-d.link) / float64(r.Frames[dir]), true
}

// modemMax is the most bytes a direction's modem (the emulated link's
// serializer) held waiting over the run's samples, in seconds of airtime.
func modemMax(r demo.Result, dir int) float64 {
	if r.RateBPS <= 0 {
		return 0
	}
	var m int64
	for _, s := range r.Samples {
		m = max(m, s.Modem[dir])
	}
	return float64(m) * 8 / float64(r.RateBPS)
}

// airPeak is the highest share of the link rate a direction's emulated
// link spent sending over windows of 30 samples (30 s): the bytes that
// left its serializer (air bytes less those still queued); 0 for an
// unlimited link or a run too short. The emulator cannot exceed 100%: a
// pacer that undercounts shows as a growing modem queue (modemMax).
func airPeak(r demo.Result, dir int) float64 {
	const win = 30
	if r.RateBPS <= 0 {
		return 0
	}
	var best float64
	for i := win + 1; i < len(r.Samples); i++ {
		a, b := r.Samples[i-win], r.Samples[i]
		sent := (b.Air[dir] - b.Modem[dir]) - (a.Air[dir] - a.Modem[dir])
		if dt := (b.T - a.T).Seconds(); dt > 0 {
			best = max(best, float64(sent)*8/dt/float64(r.RateBPS))
		}
	}
	return best
}

func ratio(a, b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func printCompare(w io.Writer, runs []compareRun) {
	var first *demo.Result
	for i := range runs {
		if runs[i].Err == nil {
			first = &runs[i].Res
			break
		}
	}
	if first == nil {
		fmt.Fprintln(w, "\nno transport completed its run")
		return
	}
	fmt.Fprintf(w, "\nprofile %s, %.0fs of traffic, the same for every transport: a→b %d, b→a %d stanzas offered (plan %.12s / %.12s)\n\n",
		first.Profile, first.Duration.Seconds(), first.Offered[sim.A2B], first.Offered[sim.B2A],
		first.OfferedHash[sim.A2B], first.OfferedHash[sim.B2A])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t", r.Transport)
	}
	fmt.Fprintln(tw)
	row := func(label string, f func(r demo.Result) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, r := range runs {
			if r.Err != nil {
				fmt.Fprint(tw, "failed\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t", f(r.Res))
		}
		fmt.Fprintln(tw)
	}
	for _, d := range []struct {
		name string
		i    int
	}{{"a→b", sim.A2B}, {"b→a", sim.B2A}} {
		row("offered stanzas "+d.name, func(r demo.Result) string { return fmt.Sprint(r.Offered[d.i]) })
		row("crossed stanzas "+d.name, func(r demo.Result) string { return fmt.Sprint(dirOf(r, d.i).st) })
		row("raw÷wire "+d.name, func(r demo.Result) string { return ratio(dirOf(r, d.i).raw, wireOf(r, d.i)) })
		row("offered÷wire "+d.name, func(r demo.Result) string { return ratio(r.OfferedBytes[d.i], wireOf(r, d.i)) })
		row("raw÷gateway's estimate "+d.name, func(r demo.Result) string { return ratio(dirOf(r, d.i).raw, dirOf(r, d.i).est) })
		row("raw bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(dirOf(r, d.i).raw) })
		row("link bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(dirOf(r, d.i).link) })
		row("wire bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(wireOf(r, d.i)) })
		row("gateway's estimate "+d.name, func(r demo.Result) string { return fmt.Sprint(dirOf(r, d.i).est) })
		row("frames "+d.name, func(r demo.Result) string { return fmt.Sprint(r.Frames[d.i]) })
		row("fixed B/frame "+d.name, func(r demo.Result) string {
			if f, ok := fixedPerFrame(r, d.i); ok {
				return fmt.Sprintf("%.1f", f)
			}
			return "-"
		})
		row("msg latency p50 "+d.name, func(r demo.Result) string {
			return fmt.Sprintf("%.0fms", float64(dirOf(r, d.i).msgs.P50.Microseconds())/1000)
		})
		row("link busy, busiest 30s "+d.name, func(r demo.Result) string {
			if r.RateBPS <= 0 || len(r.Samples) <= 31 {
				return "-"
			}
			return fmt.Sprintf("%.0f%%", 100*airPeak(r, d.i))
		})
		row("modem queue max "+d.name, func(r demo.Result) string {
			if r.RateBPS <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.1fs", modemMax(r, d.i))
		})
	}
	row("handshake bytes a+b", func(r demo.Result) string {
		return fmt.Sprintf("%d (%d conn)", r.HandshakeBytes[0]+r.HandshakeBytes[1], r.Connects[0])
	})
	row("QUIC packets dropped", func(r demo.Result) string { return fmt.Sprint(r.QUICDrops[0] + r.QUICDrops[1]) })
	row("drained in", func(r demo.Result) string { return fmt.Sprintf("%.1fs", r.Drained.Seconds()) })
	if first.Idle > 0 {
		row("idle B/hour a+b", func(r demo.Result) string { return fmt.Sprint(idlePerHour(r)) })
		row(fmt.Sprintf("  idle %v: frames, stanzas", first.Idle), func(r demo.Result) string {
			return fmt.Sprintf("%d, %d", r.IdleFrames, r.IdleStanzas)
		})
	}
	if first.Outage > 0 {
		row(fmt.Sprintf("%v outage: offered", first.Outage), func(r demo.Result) string { return fmt.Sprint(r.OutageOffered) })
		row("  first msg after return", func(r demo.Result) string { return fmt.Sprintf("%.1fs", r.OutageFirst.Seconds()) })
		row("  all delivered after return", func(r demo.Result) string { return outageDrain(r) })
		row("  reconnect bytes a+b", func(r demo.Result) string {
			return fmt.Sprintf("%d (%d conn)", r.OutageHandshake, r.OutageConn)
		})
	}
	tw.Flush()
	fmt.Fprintln(w, "\nraw: the stanzas the gateway put on the link (the presence mirror answers some locally, the link coalesces queued presence); offered: all the simulated server sent")
	fmt.Fprintln(w, "wire: what occupied the emulated link (TLS/QUIC/Noise, IP headers, pure ACKs, TCP retransmissions; handshakes included); gateway's estimate: the gateway's own count (no TCP retransmissions)")
	fmt.Fprintln(w, "fixed B/frame: (wire − link bytes) ÷ frames; handshake bytes: transport handshakes (TCP SYN + TLS, QUIC before the stream, Noise)")
}

func idlePerHour(r demo.Result) int64 {
	if r.Idle <= 0 {
		return 0
	}
	return int64(float64(r.IdleAir[0]+r.IdleAir[1]) * float64(time.Hour) / float64(r.Idle))
}

func outageDrain(r demo.Result) string {
	if r.OutageDrained == 0 {
		return "not drained"
	}
	return fmt.Sprintf("%.1fs", r.OutageDrained.Seconds())
}

// printCompareMarkdown prints one Markdown row per run (with the header
// first if header): the transport table of docs/measurements.md.
func printCompareMarkdown(w io.Writer, runs []compareRun, header bool) {
	if header {
		fmt.Fprintln(w, "| profile | transport | raw÷wire a→b / b→a | fixed B/frame a→b / b→a | p50 a→b / b→a | handshake | idle | 10-min outage: first msg / all delivered | reconnect | modem queue max |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	}
	for _, run := range runs {
		if run.Err != nil {
			fmt.Fprintf(w, "| | %s | failed: %v | | | | | | | |\n", run.Transport, run.Err)
			continue
		}
		r := run.Res
		fa, _ := fixedPerFrame(r, sim.A2B)
		fb, _ := fixedPerFrame(r, sim.B2A)
		idle, out, rec := "-", "-", "-"
		if r.Idle > 0 {
			idle = fmt.Sprintf("%d B/h", idlePerHour(r))
		}
		if r.Outage > 0 {
			out = fmt.Sprintf("%.1f s / %s", r.OutageFirst.Seconds(), outageDrain(r))
			rec = fmt.Sprintf("%d B", r.OutageHandshake)
		}
		fmt.Fprintf(w, "| %s | %s | %s / %s | %.0f / %.0f | %.2f / %.2f s | %d B | %s | %s | %s | %.1f / %.1f s |\n",
			r.Profile, run.Transport,
			ratio(dirOf(r, sim.A2B).raw, wireOf(r, sim.A2B)), ratio(dirOf(r, sim.B2A).raw, wireOf(r, sim.B2A)),
			fa, fb, dirOf(r, sim.A2B).msgs.P50.Seconds(), dirOf(r, sim.B2A).msgs.P50.Seconds(),
			r.HandshakeBytes[0]+r.HandshakeBytes[1], idle, out, rec, modemMax(r, sim.A2B), modemMax(r, sim.B2A))
	}
}

func printCompareJSON(w io.Writer, runs []compareRun) error {
	var out []demoJSON
	for _, r := range runs {
		if r.Err != nil {
			out = append(out, demoJSON{Transport: r.Transport, Error: r.Err.Error()})
			continue
		}
		out = append(out, toDemoJSON(r.Res, r.Transport))
	}
	return json.NewEncoder(w).Encode(out)
}
