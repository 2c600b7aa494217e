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
	// Virtual runs everything in memory (the S2S legs on an emu.Net, no
	// sockets), for a caller inside a testing/synctest bubble: the run
	// then takes virtual time, and its timings leave out the CPU's.
	Virtual bool
	// Idle, if set, adds an idle phase after the drain: nothing offered
	// for that long (Result.IdleAir).
	Idle time.Duration
	// Outage, if set, adds an outage phase after that: the link goes down
	// for Outage while the servers go on with the seed's plan (its part
	// after Duration), and the run waits until everything queued meanwhile
	// is delivered (Result.Outage...).
	Outage time.Duration
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
	// Air is the bytes that occupied the emulated link's serializer so far
	// per direction (index sim.A2B, sim.B2A; see emu.DirStats.AirBytes),
	// Modem the bytes waiting for it now.
	Air, Modem [2]int64
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
	// HandshakeBytes is the wire bytes of transport handshakes each
	// gateway sent (index sim.A2B: gateway A): TCP SYNs and TLS handshakes
	// with their headers and ACKs, QUIC packets before the session's
	// stream, Noise handshake datagrams (link.Stats.HandshakeOut,
	// Datagram.HandshakeBytes); Connects how many connections each made.
	HandshakeBytes [2]uint64
	Connects       [2]uint64
	// Air is what occupied the emulated link per direction, IP headers,
	// pure ACKs and TCP's retransmissions included (the emulator models
	// them: emu.Link.SetHeaders): the same ruler for every transport.
	Air [2]int64
	// QUICDrops counts QUIC packets each gateway dropped before the air
	// (link.Stats.QUICDrops).
	QUICDrops [2]uint64
	// Latencies are the chat messages' send-to-delivery times per
	// direction (index sim.A2B, sim.B2A).
	Latencies [2][]time.Duration

	// The idle phase (Options.Idle): how long, and the air bytes per
	// direction meanwhile.
	Idle    time.Duration
	IdleAir [2]int64
	// IdleFrames and IdleStanzas are the link frames and stanzas both
	// gateways sent meanwhile (keepalives; what the servers still send).
	IdleFrames, IdleStanzas uint64
	// The outage phase (Options.Outage): stanzas offered while the link
	// was down; from the link's return, the first chat message delivered
	// and everything delivered with the queues empty (OutageDrained; zero
	// if that did not happen within Options.Drain); the transport
	// handshake bytes both gateways sent from the outage's start until
	// then, and their connections.
	Outage                      time.Duration
	OutageOffered               int
	OutageFirst, OutageDrained  time.Duration
	OutageHandshake, OutageConn uint64
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

func newSide(domain string, tr *sim.Tracker, listen func() (net.Listener, error)) (*side, error) {
	ln, err := listen()
	if err != nil {
		return nil, fmt.Errorf("demo: listen for %s: %w", domain, err)
	}
	return &side{domain: domain, tr: tr, ln: ln}, nil
}

// wire connects the simulated server to its gateway's S2S address.
func (sd *side) wire(gw string, log *slog.Logger, dial s2s.Dialer) {
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
		Dial:    dial,
	})
	sd.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve,
		Secret:  secret,
		Logger:  log,
		Dial:    dial,
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
	// The plan for Duration starts the one for Duration+Outage: the
	// outage phase goes on with it.
	plan := sim.Plan(sc, o.Duration+max(o.Outage, 0))
	var plans, later [2][]sim.Planned
	for _, p := range plan {
		if p.At < o.Duration {
			plans[p.Dir] = append(plans[p.Dir], p)
		} else {
			p.At -= o.Duration
			later[p.Dir] = append(later[p.Dir], p)
		}
	}
	tr := sim.NewTracker(sc.DomainA)
	listen := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	var dial s2s.Dialer // nil: net.Dialer
	if o.Virtual {
		lan, _ := emu.Lookup("lan")
		ll := emu.NewLink(lan, 0)
		defer ll.Close()
		mn := emu.NewNet(ll)
		listen = func() (net.Listener, error) { return mn.Listen("127.0.0.1:0") }
		dial = mn.Dial
	}
	a, err := newSide(sc.DomainA, tr, listen)
	if err != nil {
		return Result{}, err
	}
	defer a.ln.Close()
	b, err := newSide(sc.DomainB, tr, listen)
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
	l.SetHeaders(true) // IP headers and ACKs take airtime, for every transport
	optA := gateway.Options{Logger: log, PrivateKey: pc.KeyA, LinkDial: l.Dial, AdminListener: o.AdminA, S2SDial: dial}
	optB := gateway.Options{Logger: log, PrivateKey: pc.KeyB, LinkListener: l.Listen(), S2SDial: dial}
	if o.Virtual {
		for _, opt := range []*gateway.Options{&optA, &optB} {
			if opt.S2SListener, err = listen(); err != nil {
				return Result{}, fmt.Errorf("demo: listen for a gateway: %w", err)
			}
		}
	}
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
	a.wire(ga.S2SAddr().String(), log, dial)
	b.wire(gb.S2SAddr().String(), log, dial)

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
		es := l.Stats()
		samples = append(samples, Sample{T: time.Since(start), A2B: bytesOf(sa.Out), B2A: bytesOf(sb.Out), Queued: queued, LinkUp: sa.Link.Up,
			Air: [2]int64{es.AB.AirBytes, es.BA.AirBytes}, Modem: [2]int64{es.AB.QueuedBytes, es.BA.QueuedBytes}})
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
		res.Frames[dir], res.HandshakeBytes[dir] = ls.Out.Frames, ls.HandshakeOut+ls.Datagram.HandshakeBytes
		res.Connects[dir], res.QUICDrops[dir] = ls.Connects, ls.QUICDrops
	}
	res.Air = [2]int64{res.Emu.AB.AirBytes, res.Emu.BA.AirBytes}
	if res.A2B.StanzasTotal == 0 || res.B2A.StanzasTotal == 0 {
		return res, errors.New("demo: no stanzas crossed the link in one direction")
	}
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case <-t.C:
			return nil
		}
	}
	if o.Idle > 0 {
		counts := func() (frames, stanzas uint64) {
			for _, g := range []*gateway.Gateway{ga, gb} {
				ls := g.LinkStats()
				frames += ls.Out.Frames
				stanzas += g.Snapshot().Out.StanzasTotal
			}
			return frames, stanzas
		}
		e0 := l.Stats()
		f0, s0 := counts()
		if err := sleep(o.Idle); err != nil {
			return res, err
		}
		e1 := l.Stats()
		f1, s1 := counts()
		res.IdleFrames, res.IdleStanzas = f1-f0, s1-s0
		res.Idle, res.IdleAir = o.Idle, [2]int64{e1.AB.AirBytes - e0.AB.AirBytes, e1.BA.AirBytes - e0.BA.AirBytes}
	}
	if o.Outage > 0 {
		handshakes := func() (bytes, conns uint64) {
			for _, g := range []*gateway.Gateway{ga, gb} {
				ls := g.LinkStats()
				bytes += ls.HandshakeOut + ls.Datagram.HandshakeBytes
				conns += ls.Connects
			}
			return bytes, conns
		}
		delivered := func() int { s := tr.Summary(); return s.A2B.Delivered + s.B2A.Delivered }
		hs0, c0 := handshakes()
		l.Down(o.Outage)
		down := time.Now()
		var og sync.WaitGroup
		var hashes [2]sim.PlanHasher
		for dir, sd := range []*side{a, b} {
			og.Add(1)
			go func() { defer og.Done(); hashes[dir] = sd.offer(runCtx, down, later[dir]) }()
		}
		if err := sleep(o.Outage); err != nil {
			return res, err
		}
		back, had := time.Now(), delivered()
		res.Outage = o.Outage
		for time.Since(back) < o.Drain {
			if err := sleep(100 * time.Millisecond); err != nil {
				return res, err
			}
			if res.OutageFirst == 0 && delivered() > had {
				res.OutageFirst = time.Since(back)
			}
			sa, sb := ga.Snapshot(), gb.Snapshot()
			s := tr.Summary()
			if sa.Link.Waiting+sa.Link.Unacked+sb.Link.Waiting+sb.Link.Unacked == 0 && s.A2B.Lost == 0 && s.B2A.Lost == 0 {
				res.OutageDrained = time.Since(back)
				break
			}
		}
		if res.OutageDrained == 0 {
			log.Warn("demo: the outage's backlog did not drain in time")
		}
		og.Wait()
		res.OutageOffered = hashes[0].Len() + hashes[1].Len()
		hs1, c1 := handshakes()
		res.OutageHandshake, res.OutageConn = hs1-hs0, c1-c0
	}
	return res, nil
}
