package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// linkSwitch is gateway A's link dialer with a switch: while down, dials
// fail, and cutting it closes the connections it made.
type linkSwitch struct {
	addr  string
	mu    sync.Mutex // guards the following fields
	down  bool
	conns []net.Conn
}

func (l *linkSwitch) dial(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, errors.New("link switched off")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err == nil {
		l.conns = append(l.conns, c)
	}
	return c, err
}

func (l *linkSwitch) set(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	if down {
		for _, c := range l.conns {
			c.Close()
		}
		l.conns = nil
	}
}

// tally counts, per flow and stanza number, what a local server received:
// the stanza itself (delivered) or an error reply to it (bounced).
type tally struct {
	mu        sync.Mutex // guards the following fields
	delivered map[string][]uint8
	bounced   map[string][]uint8
	conds     map[string]int // bounce conditions
	stray     []string       // stanzas of no flow

	// hold, if set, stops the server's reader at the first flood bounce
	// until it is closed: the server reads no more, as a busy one would.
	hold     chan struct{}
	holdOnce sync.Once
}

func newTally(flows map[string]int) *tally {
	t := &tally{delivered: map[string][]uint8{}, bounced: map[string][]uint8{}, conds: map[string]int{}}
	for f, n := range flows {
		t.delivered[f] = make([]uint8, n)
		t.bounced[f] = make([]uint8, n)
	}
	return t
}

// record notes a stanza a local server received; ids are "<flow>-<n>".
func (t *tally) record(st s2s.Stanza) {
	flow, num, _ := strings.Cut(st.ID, "-")
	if t.hold != nil && flow == "flood" && st.Type == "error" {
		t.holdOnce.Do(func() { <-t.hold })
	}
	n, err := strconv.Atoi(num)
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.delivered
	if st.Type == "error" {
		m = t.bounced
		raw := string(st.Raw)
		if i := strings.Index(raw, " xmlns='"+s2s.NSStanzas+"'"); i >= 0 {
			t.conds[raw[strings.LastIndexByte(raw[:i], '<')+1:i]]++
		}
	}
	if c, ok := m[flow]; ok && err == nil && n >= 0 && n < len(c) {
		c[n]++
		return
	}
	t.stray = append(t.stray, st.ID)
}

// account returns, for one flow, how many stanzas were delivered, bounced,
// neither (missing) or more than once in all (duplicated).
func (t *tally) account(flow string) (delivered, bounced, missing, duplicated int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, d := range t.delivered[flow] {
		b := t.bounced[flow][i]
		delivered += int(d)
		bounced += int(b)
		switch {
		case d+b == 0:
			missing++
		case d+b > 1:
			duplicated++
		}
	}
	return
}

// floodServer is a local server for the flood test: it counts what it
// receives into a tally rather than keeping the stanzas.
type floodServer struct {
	domain  string
	ln      net.Listener
	pool    *s2s.Pool
	refused atomic.Int64 // stanzas its own pool bounced: never accepted by the gateway
}

func startFloodServer(ctx context.Context, ln net.Listener, domain, gw string, tl *tally, wg *sync.WaitGroup) *floodServer {
	s := &floodServer{domain: domain, ln: ln}
	resolve := func(d string) (string, error) {
		if d == domain {
			return ln.Addr().String(), nil
		}
		return gw, nil
	}
	secret := "secret-of-" + domain
	srv := s2s.NewServer(s2s.ServerConfig{
		Hosts:   func(d string) bool { return d == domain },
		Resolve: resolve,
		Secret:  secret,
		Deliver: tl.record,
	})
	s.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve,
		Secret:  secret,
		Limits:  s2s.Limits{QueueLimit: 1 << 20},
		Bounce:  func(s2s.Stanza, string) { s.refused.Add(1) },
	})
	wg.Add(2)
	go func() { defer wg.Done(); srv.Serve(ctx, ln) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.pool.Close() }()
	return s
}

// send queues a message of flow number n, waiting while the server's own
// queue holds more than a window of stanzas (it is the gateway that must
// push back, not the test's memory that must grow).
func (s *floodServer) send(from, to, flow string, n int, body string) {
	for {
		if s.pool.Stats().Queued < 512 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	id := flow + "-" + strconv.Itoa(n)
	raw := "<message from='" + from + "' to='" + to + "' type='chat' id='" + id + "'><body>" + body + "</body></message>"
	s.pool.Send(s2s.Stanza{Name: "message", From: from, To: to, Type: "chat", ID: id, Raw: []byte(raw)})
}

// TestHostileFloodAccounting floods gateway A with messages for b.test
// while its link is down, with two background flows: another user of the
// same local server (same inbound stream) and the other direction (which
// shares A's outgoing stream to a.test with the flood's bounces). Every
// message must end delivered or bounced, exactly once, and the gateway's
// counters must say the same; memory and the spool stay bounded.
func TestHostileFloodAccounting(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	const (
		spoolMax = 256 << 10
		bgEvery  = 5 * time.Millisecond
		bgMax    = 100_000
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	lnA, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	pc, err := NewPairConfig(map[string]string{"a.test": lnA.Addr().String()}, map[string]string{"b.test": lnB.Addr().String()}, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*config.Config{pc.A, pc.B} {
		cfg.Link.BatchWindow.Duration = 10 * time.Millisecond
		cfg.Link.ReconnectMin.Duration = 20 * time.Millisecond
		cfg.Link.ReconnectMax.Duration = 100 * time.Millisecond
		cfg.Link.SpoolMaxBytes = spoolMax
		cfg.Link.SpoolSync = "none" // on disk, without fsync
		cfg.StateDir = t.TempDir()
		cfg.S2S.StanzaRate = 0 // no throttle: the flood arrives as fast as the gateway reads
	}
	linkLn, _ := net.Listen("tcp", "127.0.0.1:0")
	gb, err := New(pc.B, Options{Logger: quiet, PrivateKey: pc.KeyB, LinkListener: linkLn})
	if err != nil {
		t.Fatal(err)
	}
	sw := &linkSwitch{addr: linkLn.Addr().String()}
	ga, err := New(pc.A, Options{Logger: quiet, PrivateKey: pc.KeyA, LinkDial: sw.dial})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); ga.Run(ctx) }()
	go func() { defer wg.Done(); gb.Run(ctx) }()

	flows := map[string]int{"flood": n, "other": bgMax, "back": bgMax}
	tA, tB := newTally(flows), newTally(flows) // what a.test and b.test received
	tA.hold = make(chan struct{})
	release := sync.OnceFunc(func() { close(tA.hold) })
	defer release() // before the servers are waited for, even on t.Fatal
	a := startFloodServer(ctx, lnA, "a.test", ga.S2SAddr().String(), tA, &wg)
	b := startFloodServer(ctx, lnB, "b.test", gb.S2SAddr().String(), tB, &wg)

	// Peak live heap (as of the last GC), RSS high-water mark and spool,
	// sampled.
	var heapPeak, spoolPeak atomic.Uint64
	runtime.GC()
	heapBase, hwmBase := liveHeap(), vmHWM()
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	stopSamplingOnce := sync.OnceFunc(func() { close(stopSampling) })
	defer func() { stopSamplingOnce(); <-sampleDone }()
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := liveHeap(); h > heapBase && h-heapBase > heapPeak.Load() {
				heapPeak.Store(h - heapBase)
			}
			ls := ga.link.Stats()
			if v := uint64(max(ls.SpoolBytes, int64(ls.QueuedBytes))); v > spoolPeak.Load() {
				spoolPeak.Store(v)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	// The background flows, until stopped.
	var other, back atomic.Int64
	stopBG := make(chan struct{})
	bgDone := make(chan struct{})
	stopBGOnce := sync.OnceFunc(func() { close(stopBG) })
	defer func() { release(); stopBGOnce(); <-bgDone }()
	go func() {
		defer close(bgDone)
		tick := time.NewTicker(bgEvery)
		defer tick.Stop()
		for i := 0; i < bgMax; i++ {
			select {
			case <-stopBG:
				return
			case <-tick.C:
			}
			// Background traffic of several users, as on a real link:
			// each stays within its share of the spool however long the
			// flood keeps the link down (a minute under -race).
			a.send(fmt.Sprintf("dave%d@a.test/x", i%16), "erin@b.test", "other", i, "background")
			other.Add(1)
			b.send(fmt.Sprintf("bob%d@b.test/y", i%16), "carol@a.test", "back", i, "background")
			back.Add(1)
		}
	}()
	waitFor(t, "the background flow", 20*time.Second, func() bool {
		d1, _, _, _ := tB.account("other")
		d2, _, _, _ := tA.account("back")
		return d1 > 0 && d2 > 0 && ga.Snapshot().Link.Up
	})

	sw.set(true) // the link goes down
	waitFor(t, "the link to go down", 10*time.Second, func() bool { return !ga.Snapshot().Link.Up })
	connects := ga.Snapshot().Link.Connects
	body := strings.Repeat("flood ", 40)
	start := time.Now()
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		for i := range n {
			a.send("alice@a.test/x", "bob@b.test", "flood", i, body)
		}
	}()
	// a.test stops reading at the first bounce: the gateway's stream to it
	// fills, then its share of replies, and the gateway must stop reading
	// the flood rather than drop bounces (or, were it to drop them, the
	// accounting below fails).
	waitFor(t, "the gateway to stop reading a.test's stream", 30*time.Second, func() bool {
		return ga.pool.Stats().ReplyWaits > 0 || sum(ga.Snapshot().Drops) > 0
	})
	release()
	<-floodDone
	waitFor(t, "the gateway to take the whole flood", 60*time.Second, func() bool {
		return ga.Snapshot().Accepted["message"] >= uint64(n)+uint64(other.Load())
	})
	floodTime := time.Since(start)
	if c := ga.Snapshot().Link.Connects; c != connects {
		t.Errorf("the link connected %d times while switched off", c-connects)
	}
	sw.set(false) // and comes back
	waitFor(t, "the link to come back", 10*time.Second, func() bool { return ga.Snapshot().Link.Up })
	time.Sleep(10 * bgEvery) // some background traffic with the link up again
	stopBGOnce()
	<-bgDone

	sent := map[string]int{"flood": n, "other": int(other.Load()), "back": int(back.Load())}
	settled := func() bool {
		for f, k := range sent {
			tl := tB
			if f == "back" {
				tl = tA
			}
			d, bnc, _, _ := tl.account(f)
			_, bA, _, _ := tA.account(f)
			if f != "back" {
				bnc = bA
			}
			if d+bnc < k {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !settled(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("timed out waiting for every message to be delivered or bounced")
			break
		}
	}
	stopSamplingOnce()
	<-sampleDone

	// Per id: delivered (at the recipient's server) or bounced (at the
	// sender's), exactly once. A flow's numbers past what was sent must
	// not show up at all.
	type acct struct{ delivered, bounced int }
	got := map[string]acct{}
	for f, k := range sent {
		to, from := tB, tA // where it is delivered, where its bounces go
		if f == "back" {
			to, from = tA, tB
		}
		to.mu.Lock()
		from.mu.Lock()
		var ac acct
		var wrong []string // ids not delivered or bounced exactly once
		for i := range flows[f] {
			d, bn := int(to.delivered[f][i]), int(from.bounced[f][i])
			ac.delivered += d
			ac.bounced += bn
			if i < k && d+bn == 1 || i >= k && d+bn == 0 {
				continue
			}
			if len(wrong) < 5 {
				wrong = append(wrong, fmt.Sprintf("%s-%d delivered %d bounced %d", f, i, d, bn))
			}
			if from.delivered[f][i] != 0 || to.bounced[f][i] != 0 {
				t.Errorf("%s-%d arrived on the wrong side", f, i)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%s: sent %d, delivered %d, bounced %d; e.g. %q", f, k, ac.delivered, ac.bounced, wrong)
		}
		from.mu.Unlock()
		to.mu.Unlock()
		got[f] = ac
	}
	for _, tl := range []*tally{tA, tB} {
		if len(tl.stray) > 0 {
			t.Errorf("stanzas of no flow: %q", tl.stray[:min(len(tl.stray), 5)])
		}
	}
	if r := a.refused.Load() + b.refused.Load(); r > 0 {
		t.Errorf("the test servers' own pools bounced %d stanzas", r)
	}
	if got["back"].bounced != 0 {
		t.Errorf("the other direction lost %d of %d messages to bounces", got["back"].bounced, sent["back"])
	}
	if got["flood"].bounced == 0 || got["flood"].delivered == 0 {
		t.Errorf("flood: %+v: want some delivered (queued while down) and some bounced (queue full)", got["flood"])
	}
	// One sender's flood meets its share (link.sender_max_bytes, a quarter
	// of the spool) long before the spool is full: the bounces are the
	// share's, and the spool always had room for everyone else.
	if sa := ga.Snapshot(); sa.Bounces[dropSenderFull.String()] == 0 || sa.Bounces[dropLinkFull.String()] != 0 {
		t.Errorf("bounces %v: want %s only, not %s", sa.Bounces, dropSenderFull, dropLinkFull)
	}

	// The gateways' counters tell the same story.
	sa, sb := ga.Snapshot(), gb.Snapshot()
	if want := uint64(sent["flood"] + sent["other"]); sa.Accepted["message"] != want {
		t.Errorf("gateway a accepted %d messages, the test sent %d", sa.Accepted["message"], want)
	}
	if want := uint64(got["flood"].bounced + got["other"].bounced); sa.BouncedTotal() != want {
		t.Errorf("gateway a counted %d bounces %v, a.test received %d", sa.BouncedTotal(), sa.Bounces, want)
	}
	if want := uint64(got["flood"].bounced + got["other"].bounced + got["back"].delivered); sa.Delivered["message"] != want {
		t.Errorf("gateway a counted %d messages delivered, a.test received %d", sa.Delivered["message"], want)
	}
	if want := uint64(got["flood"].delivered + got["other"].delivered); sb.Delivered["message"] != want {
		t.Errorf("gateway b counted %d messages delivered, b.test received %d", sb.Delivered["message"], want)
	}
	for name, s := range map[string]Snapshot{"a": sa, "b": sb} {
		// The mirror's sync iq may find the link queue full when the link
		// comes back; nothing else may be dropped.
		if d := sum(s.Drops) - s.Drops[dropMirrorRefused.String()]; d > 0 {
			t.Errorf("gateway %s dropped stanzas: %v", name, s.Drops)
		}
	}

	// Bounds: the spool never holds more than spool_max_bytes; the heap
	// grows by the configured queues (spool, S2S queues of queue_limit
	// stanzas) and fixed costs, not by the flood (n stanzas of ~330 bytes,
	// several times that as queued Go values).
	if sp := spoolPeak.Load(); sp > spoolMax {
		t.Errorf("spool peak %d bytes > spool_max_bytes %d", sp, spoolMax)
	}
	const heapBound = 32 << 20
	if hp := heapPeak.Load(); hp > heapBound {
		t.Errorf("live heap grew by %d bytes at its peak, bound %d", hp, heapBound)
	}
	fmt.Printf("hostile flood: sent=%d delivered=%d bounced=%d rss_peak=%dKiB live_heap_peak=%dKiB spool_peak=%dB (flood %d in %v, reader stopped %d times; other %d/%d delivered/bounced; back %d/%d; bounce conditions %v)\n",
		sent["flood"], got["flood"].delivered, got["flood"].bounced, (vmHWM()-hwmBase)>>10, heapPeak.Load()>>10, spoolPeak.Load(),
		n, floodTime.Round(time.Millisecond), ga.pool.Stats().ReplyWaits, got["other"].delivered, got["other"].bounced, got["back"].delivered, got["back"].bounced, tA.conds)
}

// liveHeap is the heap the last GC found live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// vmHWM is the process's peak resident set size (0 where /proc is missing).
func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
