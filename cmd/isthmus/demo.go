package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/internal/demo"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

func init() {
	register("demo", "run two gateways, an emulated link and simulated servers; print the savings", runDemo)
}

// demoJSON is the shape `isthmus demo --json` prints.
type demoJSON struct {
	Transport  string                   `json:"transport,omitempty"`
	Error      string                   `json:"error,omitempty"` // --compare: this transport's run failed
	Profile    string                   `json:"profile"`
	DurationS  float64                  `json:"duration_s"`
	DrainS     float64                  `json:"drain_s"`
	Directions map[string]demoDirection `json:"directions"`
	Connects   uint64                   `json:"connects"`
	QUICDrops  uint64                   `json:"quic_drops,omitempty"`
	// --idle: air bytes both ways per hour; --outage: see demo.Result.
	IdlePerHour      *int64   `json:"idle_bytes_per_hour,omitempty"`
	OutageOffered    int      `json:"outage_offered_stanzas,omitempty"`
	OutageFirstS     *float64 `json:"outage_first_message_s,omitempty"`
	OutageDrainedS   *float64 `json:"outage_drained_s,omitempty"` // null when it did not drain
	OutageHandshakeB *uint64  `json:"outage_handshake_bytes,omitempty"`
}

type demoDirection struct {
	Stanzas   uint64            `json:"stanzas"`
	RawBytes  uint64            `json:"raw_bytes"`
	LinkBytes uint64            `json:"link_bytes"`
	WireBytes uint64            `json:"wire_bytes"` // the gateway's estimate
	Ratio     float64           `json:"raw_wire_ratio"`
	AirBytes  int64             `json:"air_bytes"` // what occupied the emulated link (headers, ACKs, retransmissions)
	AirRatio  float64           `json:"raw_air_ratio"`
	ModemMaxS float64           `json:"modem_queue_max_s"`
	Offered   int               `json:"offered_stanzas"` // by the simulated server, per the seed's plan
	OfferedB  uint64            `json:"offered_bytes"`
	PlanHash  string            `json:"offered_hash"` // digest of the offered stanzas, in order
	Frames    uint64            `json:"frames"`       // link frames sent
	FixedCost float64           `json:"fixed_bytes_per_frame"`
	Handshake uint64            `json:"handshake_bytes"`
	ByKind    map[string]uint64 `json:"stanzas_by_kind"`
	Messages  demoMessages      `json:"messages"`
}

type demoMessages struct {
	Sent       int     `json:"sent"`
	Delivered  int     `json:"delivered"`
	Lost       int     `json:"lost"`
	Duplicates int     `json:"duplicated"`
	Reordered  int     `json:"reordered"`
	P50ms      float64 `json:"latency_p50_ms"`
	P90ms      float64 `json:"latency_p90_ms"`
	P99ms      float64 `json:"latency_p99_ms"`
}

func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", time.Minute, "how long the simulated users are active (the run then drains the queues)")
	profile := fs.String("profile", "vhf-9600", "link profile, optionally with overrides (see `isthmus linkemu -list`), e.g. vhf-9600,loss=0.02")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of the table")
	seed := fs.Int64("seed", 1, "seed for the workload and the emulated link")
	verbose := fs.Bool("v", false, "show the gateways' logs")
	admin := fs.String("admin", "", "serve gateway A's status page and /metrics on this `HOST:PORT` while the demo runs")
	report := fs.String("report", "", "write a self-contained HTML report with plots to this `FILE`")
	transport := fs.String("transport", "tcp", "link.transport of both gateways: tcp, quic or datagram")
	compare := fs.Bool("compare", false, "run tcp, quic and datagram one after another on the same traffic and print them side by side")
	idle := fs.Duration("idle", 0, "after the traffic has drained, measure an idle phase this long (bytes per hour)")
	outage := fs.Duration("outage", 0, "then take the link down this long while the traffic goes on, and measure how long its backlog takes to drain")
	window := fs.Duration("batch-window", 0, "link.batch_window of both gateways (0: the config default, 50ms); longer windows put more stanzas in each packet")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: isthmus demo [--duration 1m] [--profile vhf-9600] [--json] [--seed N] [--admin HOST:PORT] [--report FILE.html] [--batch-window 50ms] [--idle 10m] [--outage 10m] [--transport tcp|quic|datagram | --compare]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *duration <= 0 {
		fmt.Fprintf(os.Stderr, "demo: --duration %v must be positive\n", *duration)
		return errUsage
	}
	p, err := emu.ParseProfile(*profile)
	if err != nil {
		return err
	}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	tty := isTerminal(os.Stderr)
	if !*asJSON || tty {
		fmt.Fprintf(os.Stderr, "isthmus demo: profile %s, %v of simulated traffic, then draining the queues\n", p, *duration)
	}
	if *window < 0 || *window > 10*time.Second {
		return fmt.Errorf("--batch-window: %v is out of range (0s..10s)", *window)
	}
	switch *transport {
	case "tcp", "quic", "datagram":
	default:
		return fmt.Errorf("--transport: %q is not a transport (tcp, quic or datagram)", *transport)
	}
	if *idle < 0 || *outage < 0 {
		return fmt.Errorf("--idle %v, --outage %v: must not be negative", *idle, *outage)
	}
	opts := demo.Options{Profile: p, Duration: *duration, Seed: *seed, Logger: logger, BatchWindow: *window, Transport: *transport,
		Idle: *idle, Outage: *outage}
	if *compare {
		if *admin != "" || *report != "" {
			return fmt.Errorf("--compare: --admin and --report serve one run; leave them out")
		}
		return runCompare(ctx, opts, tty, *asJSON)
	}
	if *admin != "" {
		ln, err := net.Listen("tcp", *admin)
		if err != nil {
			return fmt.Errorf("--admin: %w", err)
		}
		opts.AdminA = ln // gateway A closes it when the run ends
		fmt.Fprintf(os.Stderr, "gateway A: status page http://%s/ and metrics http://%s/metrics while the demo runs\n", ln.Addr(), ln.Addr())
	}
	if tty {
		opts.Progress = func(pr demo.Progress) { progressLine(os.Stderr, pr) }
	}
	res, err := demo.Run(ctx, opts)
	if tty {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if *report != "" {
		if err := writeReport(*report, res); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "report written to %s\n", *report)
	}
	if *asJSON {
		return printDemoJSON(os.Stdout, res)
	}
	printDemo(os.Stdout, res)
	return nil
}

func writeReport(path string, res demo.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := demo.WriteReport(f, res); err != nil {
		f.Close()
		return fmt.Errorf("--report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

func progressLine(w io.Writer, pr demo.Progress) {
	phase := "running"
	if pr.Draining {
		phase = "draining"
	}
	fmt.Fprintf(w, "\r\033[K%s %5.0fs  a→b %d stanzas %d→%d B (%.1fx)  b→a %d stanzas %d→%d B (%.1fx)  queued %d",
		phase, pr.Elapsed.Seconds(),
		pr.A2B.StanzasTotal, pr.A2B.RawBytes, pr.A2B.WireBytes, pr.A2B.Ratio(),
		pr.B2A.StanzasTotal, pr.B2A.RawBytes, pr.B2A.WireBytes, pr.B2A.Ratio(), pr.Queued)
}

func printDemo(w io.Writer, r demo.Result) {
	fmt.Fprintf(w, "\nprofile %s: %.0fs of traffic, queues drained in %.1fs\n\n", r.Profile, r.Duration.Seconds(), r.Drained.Seconds())
	gateway.WriteTable(w, []string{"a→b", "b→a"}, []gateway.Direction{r.A2B, r.B2A})
	fmt.Fprintf(w, "\nemulated link carried a→b %d B, b→a %d B (TCP payload; %d/%d B resent after loss)\n",
		r.Emu.AB.DeliveredBytes, r.Emu.BA.DeliveredBytes, r.Emu.AB.RetransmittedBytes, r.Emu.BA.RetransmittedBytes)
	fmt.Fprintf(w, "offered by the simulated servers (fixed by the seed): a→b %d, b→a %d stanzas; link frames sent a→b %d, b→a %d\n",
		r.Offered[sim.A2B], r.Offered[sim.B2A], r.Frames[sim.A2B], r.Frames[sim.B2A])
	fmt.Fprintf(w, "chat messages a→b: %s\n", r.Messages.A2B)
	fmt.Fprintf(w, "chat messages b→a: %s\n", r.Messages.B2A)
	fmt.Fprintf(w, "transport handshakes: %d B both ways (%d connections); on the emulated link (headers, ACKs, retransmissions): a→b %d B, b→a %d B\n",
		r.HandshakeBytes[0]+r.HandshakeBytes[1], r.Connects[0], r.Air[0], r.Air[1])
	if r.Idle > 0 {
		fmt.Fprintf(w, "idle %v: %d B both ways (%d B/hour)\n", r.Idle, r.IdleAir[0]+r.IdleAir[1], idlePerHour(r))
	}
	if r.Outage > 0 {
		fmt.Fprintf(w, "%v outage, %d stanzas offered meanwhile: after the link returned, first message %.1fs, all delivered %s; %d B of handshakes (%d connections)\n",
			r.Outage, r.OutageOffered, r.OutageFirst.Seconds(), outageDrain(r), r.OutageHandshake, r.OutageConn)
	}
	fmt.Fprintf(w, "\nsavings: a→b %.1fx, b→a %.1fx fewer bytes on the wire than the stanzas' plain XML\n", r.A2B.Ratio(), r.B2A.Ratio())
}

func printDemoJSON(w io.Writer, r demo.Result) error {
	return json.NewEncoder(w).Encode(toDemoJSON(r, ""))
}

func toDemoJSON(r demo.Result, transport string) demoJSON {
	dir := func(i int, d gateway.Direction, m demoMessagesSrc) demoDirection {
		fixed, _ := fixedPerFrame(r, i)
		return demoDirection{
			Stanzas: d.StanzasTotal, RawBytes: d.RawBytes, LinkBytes: d.LinkBytes, WireBytes: d.WireBytes,
			Ratio: round2(d.Ratio()), ByKind: d.Stanzas,
			Offered: r.Offered[i], OfferedB: r.OfferedBytes[i], PlanHash: r.OfferedHash[i], Frames: r.Frames[i],
			FixedCost: round2(fixed), Handshake: r.HandshakeBytes[i],
			AirBytes: r.Air[i], ModemMaxS: round2(modemMax(r, i)),
			Messages: demoMessages{
				Sent: m.Sent, Delivered: m.Delivered, Lost: m.Lost, Duplicates: m.Duplicates, Reordered: m.Reordered,
				P50ms: ms(m.P50), P90ms: ms(m.P90), P99ms: ms(m.P99),
			},
		}
	}
	j := demoJSON{
		Transport: transport,
		Profile:   r.Profile,
		DurationS: round2(r.Duration.Seconds()),
		DrainS:    round2(r.Drained.Seconds()),
		Directions: map[string]demoDirection{
			"a2b": dir(sim.A2B, r.A2B, r.Messages.A2B),
			"b2a": dir(sim.B2A, r.B2A, r.Messages.B2A),
		},
		Connects:  r.Connects[0],
		QUICDrops: r.QUICDrops[0] + r.QUICDrops[1],
	}
	for k, i := range map[string]int{"a2b": sim.A2B, "b2a": sim.B2A} {
		d := j.Directions[k]
		if r.Air[i] > 0 {
			d.AirRatio = round2(float64(d.RawBytes) / float64(r.Air[i]))
		}
		j.Directions[k] = d
	}
	if r.Idle > 0 {
		n := idlePerHour(r)
		j.IdlePerHour = &n
	}
	if r.Outage > 0 {
		first, hs := round2(r.OutageFirst.Seconds()), r.OutageHandshake
		j.OutageOffered, j.OutageFirstS, j.OutageHandshakeB = r.OutageOffered, &first, &hs
		if r.OutageDrained > 0 {
			d := round2(r.OutageDrained.Seconds())
			j.OutageDrainedS = &d
		}
	}
	return j
}

type demoMessagesSrc = struct {
	Sent, Delivered, Lost, Duplicates, Reordered int
	P50, P90, P99, Max                           time.Duration
	Probes, ProbesAnswered, IQs, IQsAnswered     int
}

func ms(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
