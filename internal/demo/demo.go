// Package demo runs a whole isthmus deployment in one process: two
// gateways, an emulated slow link between them, and on each side a simulated
// XMPP server (package internal/sim) that speaks real S2S, dialback
// included, to its gateway. `isthmus demo` and the end-to-end tests use it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/internal/sim"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

// Options configure a run.
type Options struct {
	Profile  emu.Profile
	Duration time.Duration // workload time; the run then drains the queues
	Drain    time.Duration // longest wait for the queues to empty (default 2m)
	Scenario sim.Scenario
	Seed     int64
	Logger   *slog.Logger // gateways' logs (nil: discarded)
	// Progress, if set, is called about once a second while the run goes.
	Progress func(Progress)
	// AdminA, if set, serves gateway A's admin interface on this listener.
	AdminA net.Listener
	// BatchWindow, if not zero, replaces the configured default
	// (link.batch_window) on both gateways.
	BatchWindow time.Duration
	// Transport is link.transport of both gateways: "tcp" (default),
	// "quic" or "datagram".
	Transport string
}

// Progress is a running view of the demo.
type Progress struct {
	Elapsed  time.Duration
	Draining bool
	A2B, B2A gateway.Direction
	Queued   int
	LinkUp   bool
}

// Sample is the cumulative figures of both directions at one moment of a
// run (one a second), for the report's plots.
type Sample struct {
	T        time.Duration // since the start
	A2B, B2A Bytes
	Queued   int // stanzas waiting or unacknowledged, both sides
	LinkUp   bool
}

// Bytes is one direction's cumulative byte counts.
type Bytes struct {
	Stanzas, Raw, Link, Wire uint64
}

func bytesOf(d gateway.Direction) Bytes {
	return Bytes{Stanzas: d.StanzasTotal, Raw: d.RawBytes, Link: d.LinkBytes, Wire: d.WireBytes}
}

// Result is what a run measured.
type Result struct {
	Profile  string
	Duration time.Duration // workload time
	Drained  time.Duration // time to empty the queues after the workload
	A2B, B2A gateway.Direction
	Messages sim.Summary
	Emu      emu.Stats
	A, B     gateway.Snapshot

	// For the report (report.go).
	RateBPS int64    // the link's rate (0: unlimited)
	Samples []Sample // one a second, workload and drain
	// Offered is the number of stanzas each simulated server offered
	// (index sim.A2B, sim.B2A), OfferedHash their digest (sim.PlanHash):
	// the same for every run and transport of one seed and duration.
	Offered      [2]int
	OfferedBytes [2]uint64 // their raw XML bytes
	OfferedHash  [2]string
	// Frames is the number of link frames each gateway sent (index
	// sim.A2B: gateway A), for the fixed cost per frame.
	Frames [2]uint64
	// HandshakeBytes is the bytes of transport handshakes each gateway
	// sent, where the transport counts them (datagram), else 0.
	HandshakeBytes [2]uint64
	// Latencies are the chat messages' send-to-delivery times per
	// direction (index sim.A2B, sim.B2A).
	Latencies [2][]time.Duration
}

// side is one simulated server wired to the S2S sockets. It offers its
// direction of the plan on schedule and records what arrives; it does not
// react to arrivals, whose answers are already in the plan.
type side struct {
	domain string
	tr     *sim.Tracker
	ln     net.Listener
	srv    *s2s.Server
	pool   *s2s.Pool
}

func newSide(domain string, tr *sim.Tracker) (*side, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for %s: %w", domain, err)
	}
	return &side{domain: domain, tr: tr, ln: ln}, nil
}

// wire connects the simulated server to its gateway's S2S address.
func (sd *side) wire(gw string, log *slog.Logger) {
	domain := sd.domain
	resolve := func(d string) (string, error) {
		if d == domain {
			return sd.ln.Addr().String(), nil
		}
		return gw, nil
	}
	secret := "demo-server-secret-" + domain
	sd.srv = s2s.NewServer(s2s.ServerConfig{
		Hosts:   func(d string) bool { return d == domain },
		Resolve: resolve,
		Secret:  secret,
		Deliver: sd.deliver,
		Logger:  log,
	})
	sd.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve,
		Secret:  secret,
		Logger:  log,
		Bounce: func(st s2s.Stanza, cond string) {
			log.Warn("demo: stanza bounced", "server", domain, "to", st.To, "cond", cond)
		},
	})
}

func (sd *side) deliver(st s2s.Stanza) { sd.tr.Arrived(st.Raw, time.Now()) }

// offer hands the planned stanzas of this side to S2S, each at its time
// since start, in order, until the plan is done or ctx ends. It returns
// the digest of what it offered.
func (sd *side) offer(ctx context.Context, start time.Time, plan []sim.Planned) (h sim.PlanHasher) {
	t := time.NewTimer(0)
	defer t.Stop()
	for _, p := range plan {
		if d := time.Until(start.Add(p.At)); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return h
			case <-t.C:
			}
		}
		st, err := s2s.ParseStanza(p.Raw)
		if err != nil {
			continue // the simulator's output is checked by its own tests
		}
		h.Add(p.Raw)
		sd.tr.Offered(p.Raw, time.Now())
		sd.pool.Send(st)
	}
	return h
}

// Run runs the demo and returns what it measured.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sc := o.Scenario
	if sc.DomainA == "" {
		sc = sim.DefaultScenario()
		sc.Seed = o.Seed
	}
	plan := sim.Plan(sc, o.Duration)
	var plans [2][]sim.Planned
	for _, p := range plan {
		plans[p.Dir] = append(plans[p.Dir], p)
	}
	tr := sim.NewTracker(sc.DomainA)
	a, err := newSide(sc.DomainA, tr)
	if err != nil {
		return Result{}, err
	}
	defer a.ln.Close()
	b, err := newSide(sc.DomainB, tr)
	if err != nil {
		return Result{}, err
	}
	defer b.ln.Close()

	pc, err := gateway.NewPairConfig(
		map[string]string{sc.DomainA: a.ln.Addr().String()},
		map[string]string{sc.DomainB: b.ln.Addr().String()},
		"demo-dialback-secret")
	if err != nil {
		return Result{}, err
	}
	pc.A.Link.RateBPS, pc.B.Link.RateBPS = o.Profile.RateBPS, o.Profile.RateBPS
	if o.BatchWindow > 0 {
		pc.A.Link.BatchWindow.Duration, pc.B.Link.BatchWindow.Duration = o.BatchWindow, o.BatchWindow
	}
	l := emu.NewLink(o.Profile, o.Seed)
	defer l.Close()
	optA := gateway.Options{Logger: log, PrivateKey: pc.KeyA, LinkDial: l.Dial, AdminListener: o.AdminA}
	optB := gateway.Options{Logger: log, PrivateKey: pc.KeyB, LinkListener: l.Listen()}
	switch o.Transport {
	case "", "tcp":
	case "quic", "datagram":
		pa, pb := l.PacketPipe()
		optA.LinkDial, optA.LinkPacketConn, optA.LinkPeerAddr = nil, pa, pb.LocalAddr()
		optB.LinkListener.Close()
		optB.LinkListener, optB.LinkPacketConn = nil, pb
		pc.A.Link.Transport, pc.B.Link.Transport = o.Transport, o.Transport
	default:
		return Result{}, fmt.Errorf("demo: unknown transport %q (tcp, quic or datagram)", o.Transport)
	}
	gb, err := gateway.New(pc.B, optB)
	if err != nil {
		return Result{}, err
	}
	ga, err := gateway.New(pc.A, optA)
	if err != nil {
		return Result{}, err
	}
	a.wire(ga.S2SAddr().String(), log)
	b.wire(gb.S2SAddr().String(), log)

	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil {
				errs <- err
			}
		}()
	}
	goRun(ga.Run)
	goRun(gb.Run)
	goRun(func(ctx context.Context) error { return a.srv.Serve(ctx, a.ln) })
	goRun(func(ctx context.Context) error { return b.srv.Serve(ctx, b.ln) })
	defer func() {
		stopAll()
		a.pool.Close()
		b.pool.Close()
		wg.Wait()
	}()

	start := time.Now()
	wlCtx, stopWorkload := context.WithTimeout(runCtx, o.Duration)
	defer stopWorkload()
	var wlg sync.WaitGroup
	var offered [2]sim.PlanHasher
	for dir, sd := range []*side{a, b} {
		wlg.Add(1)
		go func() { defer wlg.Done(); offered[dir] = sd.offer(runCtx, start, plans[dir]) }()
	}
	var samples []Sample
	progress := func(draining bool) (queued int) {
		sa, sb := ga.Snapshot(), gb.Snapshot()
		queued = sa.Link.Waiting + sa.Link.Unacked + sb.Link.Waiting + sb.Link.Unacked
		samples = append(samples, Sample{T: time.Since(start), A2B: bytesOf(sa.Out), B2A: bytesOf(sb.Out), Queued: queued, LinkUp: sa.Link.Up})
		if o.Progress != nil {
			o.Progress(Progress{Elapsed: time.Since(start), Draining: draining, A2B: sa.Out, B2A: sb.Out, Queued: queued, LinkUp: sa.Link.Up})
		}
		return queued
	}
	samples = append(samples, Sample{})
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case err := <-errs:
			return Result{}, err
		case <-wlCtx.Done():
			break wait
		case <-tick.C:
			progress(false)
		}
	}
	wlg.Wait()
	workEnd := time.Now()

	// Drain: wait until nothing is queued or in flight on either side, and
	// the message tracker has nothing pending, for two seconds running.
	drainEnd := workEnd.Add(o.Drain)
	quiet := 0
	for quiet < 2 {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case err := <-errs:
			return Result{}, err
		case <-tick.C:
		}
		q := progress(true)
		s := tr.Summary()
		if q == 0 && s.A2B.Lost == 0 && s.B2A.Lost == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(drainEnd) {
			log.Warn("demo: queues did not drain in time", "queued", q)
			break
		}
	}
	res := Result{
		Profile:  o.Profile.Name,
		Duration: workEnd.Sub(start),
		Drained:  time.Since(workEnd),
		A:        ga.Snapshot(),
		B:        gb.Snapshot(),
		Messages: tr.Summary(),
		Emu:      l.Stats(),
		RateBPS:  o.Profile.RateBPS,
		Samples:  samples,
	}
	res.Latencies[sim.A2B], res.Latencies[sim.B2A] = tr.Latencies()
	for dir := range offered {
		res.Offered[dir] = offered[dir].Len()
		res.OfferedBytes[dir] = offered[dir].Bytes()
		res.OfferedHash[dir] = offered[dir].Sum()
	}
	res.A2B, res.B2A = res.A.Out, res.B.Out
	for dir, g := range []*gateway.Gateway{ga, gb} {
		ls := g.LinkStats()
		res.Frames[dir], res.HandshakeBytes[dir] = ls.Out.Frames, ls.Datagram.HandshakeBytes
	}
	if res.A2B.StanzasTotal == 0 || res.B2A.StanzasTotal == 0 {
		return res, errors.New("demo: no stanzas crossed the link in one direction")
	}
	return res, nil
}
