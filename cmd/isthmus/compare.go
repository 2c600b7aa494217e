package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

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

// fixedPerFrame is what the wire costs beyond the link frames (framing,
// TLS or Noise records, TCP/IP or UDP headers, ACKs), per frame sent.
func fixedPerFrame(r demo.Result, dir int) (float64, bool) {
	d := r.A2B
	if dir == sim.B2A {
		d = r.B2A
	}
	if r.Frames[dir] == 0 || d.WireBytes < d.LinkBytes {
		return 0, false
	}
	return float64(d.WireBytes-d.LinkBytes) / float64(r.Frames[dir]), true
}

// peakUtil is the highest wire rate of a direction over windows of 30
// samples (30 s) of the run, as a share of the link rate (0: unlimited
// link, or a run too short). Shorter windows mostly see that the wire
// count jumps when a paced write hands a batch to the socket.
func peakUtil(r demo.Result, dir int) float64 {
	const win = 30
	if r.RateBPS <= 0 {
		return 0
	}
	var best float64
	for i := win; i < len(r.Samples); i++ {
		a, b := r.Samples[i-win], r.Samples[i]
		wa, wb := a.A2B.Wire, b.A2B.Wire
		if dir == sim.B2A {
			wa, wb = a.B2A.Wire, b.B2A.Wire
		}
		if dt := (b.T - a.T).Seconds(); dt > 0 {
			best = max(best, float64(wb-wa)*8/dt/float64(r.RateBPS))
		}
	}
	return best
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
		dir := func(r demo.Result) (out struct{ raw, link, wire, st uint64 }) {
			x := r.A2B
			if d.i == sim.B2A {
				x = r.B2A
			}
			out.raw, out.link, out.wire, out.st = x.RawBytes, x.LinkBytes, x.WireBytes, x.StanzasTotal
			return out
		}
		row("offered stanzas "+d.name, func(r demo.Result) string { return fmt.Sprint(r.Offered[d.i]) })
		row("crossed stanzas "+d.name, func(r demo.Result) string { return fmt.Sprint(dir(r).st) })
		row("raw÷wire "+d.name, func(r demo.Result) string {
			x := dir(r)
			if x.wire == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", float64(x.raw)/float64(x.wire))
		})
		row("offered÷wire "+d.name, func(r demo.Result) string {
			x := dir(r)
			if x.wire == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", float64(r.OfferedBytes[d.i])/float64(x.wire))
		})
		row("offered bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(r.OfferedBytes[d.i]) })
		row("raw bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(dir(r).raw) })
		row("link bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(dir(r).link) })
		row("wire bytes "+d.name, func(r demo.Result) string { return fmt.Sprint(dir(r).wire) })
		row("frames "+d.name, func(r demo.Result) string { return fmt.Sprint(r.Frames[d.i]) })
		row("fixed B/frame "+d.name, func(r demo.Result) string {
			if f, ok := fixedPerFrame(r, d.i); ok {
				return fmt.Sprintf("%.1f", f)
			}
			return "-"
		})
		row("msg latency p50 "+d.name, func(r demo.Result) string {
			m := r.Messages.A2B
			if d.i == sim.B2A {
				m = r.Messages.B2A
			}
			return fmt.Sprintf("%.0fms", float64(m.P50.Microseconds())/1000)
		})
		row("peak wire/link 30s "+d.name, func(r demo.Result) string {
			if r.RateBPS <= 0 || len(r.Samples) <= 30 {
				return "-"
			}
			return fmt.Sprintf("%.0f%%", 100*peakUtil(r, d.i))
		})
	}
	row("handshake bytes a+b", func(r demo.Result) string {
		if hs := r.HandshakeBytes[0] + r.HandshakeBytes[1]; hs > 0 {
			return fmt.Sprint(hs)
		}
		return "-"
	})
	row("drained in", func(r demo.Result) string { return fmt.Sprintf("%.1fs", r.Drained.Seconds()) })
	tw.Flush()
	fmt.Fprintln(w, "\nraw: the stanzas the gateway put on the link (the presence mirror answers some locally, the link coalesces queued presence); offered: all the simulated server sent")
	fmt.Fprintln(w, "fixed B/frame: (wire − link bytes) ÷ frames: framing, TLS/QUIC/Noise records, TCP/IP or UDP headers and ACKs per frame; handshake bytes: where the transport counts them (datagram)")
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
