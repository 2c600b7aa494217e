package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
)

// TestRestartUnderTraffic restarts gateway A (a child process `isthmus
// run`) while local servers on both sides exchange messages through the
// pair, and counts what the servers bounce (a connection refused or timed
// out: a real server returns an error to the user) and what is lost (sent,
// neither delivered nor bounced):
//
//   - socket-activated: A inherits its S2S and link listening sockets, as
//     systemd passes them (ExtraFiles, LISTEN_FDS, LISTEN_PID,
//     LISTEN_FDNAMES), and is restarted with SIGTERM: nothing may be
//     bounced, lost or duplicated;
//   - plain restart: A opens its own sockets; SIGTERM, then a new process;
//   - kill -9: A opens its own sockets; SIGKILL, a new process after
//     restartGap (systemd's RestartSec);
//   - socket-activated kill -9: for comparison.
//
// The local servers are s2s.Server and s2s.Pool, as in internal/chaos. A
// server's outgoing stream that the gateway closes cleanly (</stream:stream>)
// may leave stanzas queued behind it; the pool hands them back and they are
// sent again on a new stream, as Prosody and ejabberd do with a new
// outgoing session. Only stanzas handed back after a failed connection or
// dialback count as bounces.
func TestRestartUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts gateway processes under traffic for about a minute")
	}
	type result struct {
		name                           string
		bounced, lost, dup, sent, errs int
	}
	var results []result
	for _, sc := range []struct {
		name      string
		activated bool
		kill      bool
	}{
		{"socket-activated", true, false},
		{"plain-restart", false, false},
		{"kill-9", false, true},
		{"socket-activated-kill-9", true, true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r := newRestartRun(t, sc.activated)
			r.traffic(func() { r.restartA(sc.kill) })
			res := result{name: sc.name}
			for _, s := range []*localServer{r.sa, r.sb} {
				s.mu.Lock()
				res.bounced += len(s.bounced)
				res.sent += len(s.sent)
				res.errs += s.errs
				s.mu.Unlock()
			}
			for _, d := range []struct{ from, to *localServer }{{r.sa, r.sb}, {r.sb, r.sa}} {
				lost, dup := d.from.accountTo(d.to)
				res.lost += lost
				res.dup += dup
			}
			t.Logf("%s: sent %d, bounced %d, error replies %d, lost %d, duplicated %d, resent after a clean close %d/%d",
				sc.name, res.sent, res.bounced, res.errs, res.lost, res.dup, r.sa.resent, r.sb.resent)
			if sc.activated && !sc.kill && (res.bounced != 0 || res.lost != 0 || res.dup != 0 || res.errs != 0) {
				t.Errorf("socket-activated restart: %d bounced, %d lost, %d duplicated, %d error replies; want none", res.bounced, res.lost, res.dup, res.errs)
			}
			if !sc.kill && res.lost != 0 {
				t.Errorf("graceful restart lost %d stanzas", res.lost)
			}
			results = append(results, res)
		})
	}
	var parts []string
	for _, r := range results {
		parts = append(parts, fmt.Sprintf("%s bounces=%d lost=%d dup=%d", r.name, r.bounced+r.errs, r.lost, r.dup))
	}
	if len(results) > 0 {
		fmt.Printf("chaos restart: %s (of %d messages each)\n", strings.Join(parts, "; "), results[0].sent)
	}
}

const (
	restartPairs   = 5
	restartMsgs    = 200 // each way
	restartSendFor = 10 * time.Second
	restartAt      = 3 * time.Second
	restartGap     = 2 * time.Second // after kill -9 (the unit's RestartSec is 5s)
)

// localServer is a local XMPP server: it hosts one domain and reaches the
// other side's through its gateway.
type localServer struct {
	domain string
	ln     net.Listener
	srv    *s2s.Server
	pool   *s2s.Pool
	resend chan s2s.Stanza

	mu       sync.Mutex      // guards the following fields
	sent     map[string]bool // ids sent
	seen     map[string]int  // ids delivered here, how often
	bounced  map[string]bool // ids bounced by the pool (connect or dialback failed)
	errs     int             // error stanzas received (the gateway bounced)
	failing  map[string]bool // remote domain whose latest outgoing stream failed to open
	resent   int
	outFails int
}

func newLocalServer(ctx context.Context, t *testing.T, domain string, gw func() string, wg *sync.WaitGroup) *localServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &localServer{domain: domain, ln: ln, resend: make(chan s2s.Stanza, 10000),
		sent: map[string]bool{}, seen: map[string]int{}, bounced: map[string]bool{}, failing: map[string]bool{}}
	secret := "local-secret-" + domain + "-0123456789"
	resolve := func(d string) (string, error) {
		if d == domain {
			return ln.Addr().String(), nil
		}
		return gw(), nil
	}
	quiet := slog.New(slog.DiscardHandler)
	lim := s2s.Limits{QueueLimit: 100000, ConnectTimeout: 20 * time.Second}
	s.srv = s2s.NewServer(s2s.ServerConfig{
		Hosts: func(d string) bool { return d == domain }, Resolve: resolve, Secret: secret,
		Deliver: s.deliver, Logger: quiet, Limits: lim,
	})
	s.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve, Secret: secret, Logger: quiet, Limits: lim,
		Events: func(e s2s.Event) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch e.Kind {
			case "out-fail":
				s.failing[e.Remote] = true
				s.outFails++
			case "out-auth":
				s.failing[e.Remote] = false
			}
		},
		Bounce: func(st s2s.Stanza, cond string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.failing[s2s.Domain(st.To)] {
				s.bounced[st.ID] = true
				return
			}
			s.resent++
			s.resend <- st
		},
	})
	wg.Add(3)
	go func() { defer wg.Done(); s.srv.Serve(ctx, ln) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.pool.Close() }()
	go func() {
		defer wg.Done()
		for {
			select {
			case st := <-s.resend:
				s.pool.Send(st)
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

func (s *localServer) deliver(st s2s.Stanza) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Type == "error" {
		s.errs++
		return
	}
	if st.Name == "message" {
		s.seen[st.ID]++
	}
}

func (s *localServer) send(to string, i int) {
	pair := i % restartPairs
	id := fmt.Sprintf("%s>%s-%d#%d", s.domain, to, pair, i/restartPairs)
	st := s2s.Stanza{Name: "message", From: fmt.Sprintf("u%d@%s/r", pair, s.domain), To: fmt.Sprintf("v%d@%s", pair, to), ID: id}
	st.Raw = fmt.Appendf(nil, "<message from='%s' to='%s' id='%s' type='chat'><body>restart message %d</body></message>", st.From, st.To, id, i)
	s.mu.Lock()
	s.sent[id] = true
	s.mu.Unlock()
	s.pool.Send(st)
}

// progress counts the messages delivered to s and those it saw bounced.
func (s *localServer) progress() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.bounced) + s.errs
	for _, c := range s.seen {
		n += c
	}
	return n
}

// settled reports whether every message s sent was delivered to dst or
// bounced.
func (s *localServer) settled(dst *localServer) bool {
	lost, _ := s.accountTo(dst)
	return lost == 0
}

// accountTo returns the messages s sent that dst neither received nor s
// saw bounced, and those dst received more than once.
func (s *localServer) accountTo(dst *localServer) (lost, dup int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	for id := range s.sent {
		n := dst.seen[id]
		if n == 0 && !s.bounced[id] {
			lost++
		}
		if n > 1 {
			dup++
		}
	}
	return lost, dup
}

type restartRun struct {
	t         *testing.T
	dir       string
	activated bool
	sa, sb    *localServer
	s2sA      string // A's S2S address
	linkA     string
	files     []*os.File // the sockets "systemd" holds for A
	cmd       *exec.Cmd
	exited    chan error
	log       *syncBuffer
	starts    int
}

func newRestartRun(t *testing.T, activated bool) *restartRun {
	r := &restartRun{t: t, dir: t.TempDir(), activated: activated}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	if activated {
		// As systemd: the sockets are opened once and outlive every
		// process of the gateway.
		for _, addr := range []*string{&r.s2sA, &r.linkA} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			*addr = ln.Addr().String()
			ln.Close() // f keeps the socket
			r.files = append(r.files, f)
			t.Cleanup(func() { f.Close() })
		}
	} else {
		r.s2sA, r.linkA = freePort(t), freePort(t)
	}
	s2sB := ""
	r.sa = newLocalServer(ctx, t, "a.test", func() string { return r.s2sA }, &wg)
	r.sb = newLocalServer(ctx, t, "b.test", func() string { return s2sB }, &wg)

	ka, _ := linkkey.GenerateKey()
	kb, _ := linkkey.GenerateKey()
	for name, k := range map[string]ed25519.PrivateKey{"a.key": ka, "b.key": kb} {
		pem, _ := linkkey.MarshalPrivateKey(k)
		os.WriteFile(filepath.Join(r.dir, name), pem, 0o600)
	}
	pub := func(k ed25519.PrivateKey) string { return linkkey.FormatPublicKey(k.Public().(ed25519.PublicKey)) }
	common := `log_level = "info"
summary_interval = "0s"
[link]
rate_bps = 0
batch_window = "20ms"
keepalive = "10s"
reconnect_min = "100ms"
reconnect_max = "500ms"
`
	a := fmt.Sprintf(`name = "a"
state_dir = "state-a"
remote_domains = ["b.test"]
%slisten = %q
key_file = "a.key"
peer_key = %q
[local_domains]
"a.test" = %q
[s2s]
listen = %q
dialback_secret = "gateway-a-secret-0123456789"
queue_limit = 100000
`, common, r.linkA, pub(kb), r.sa.ln.Addr().String(), r.s2sA)
	if err := os.WriteFile(filepath.Join(r.dir, "a.toml"), []byte(a), 0o600); err != nil {
		t.Fatal(err)
	}

	// Gateway B runs in this process and dials A.
	s2sLnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s2sB = s2sLnB.Addr().String()
	b := fmt.Sprintf(`name = "b"
state_dir = "state-b"
remote_domains = ["a.test"]
%sdial = %q
key_file = "b.key"
peer_key = %q
[local_domains]
"b.test" = %q
[s2s]
listen = %q
dialback_secret = "gateway-b-secret-0123456789"
queue_limit = 100000
`, common, r.linkA, pub(ka), r.sb.ln.Addr().String(), s2sB)
	pathB := filepath.Join(r.dir, "b.toml")
	if err := os.WriteFile(pathB, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgB, err := config.Load(pathB)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(cfgB.StateDir, 0o700)
	gb, err := gateway.New(cfgB, gateway.Options{Logger: slog.New(slog.DiscardHandler), S2SListener: s2sLnB})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); gb.Run(ctx) }()

	r.startA()
	t.Cleanup(func() {
		if r.cmd != nil && r.cmd.ProcessState == nil {
			r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(10 * time.Second):
				r.cmd.Process.Kill()
				<-r.exited
			}
		}
		if t.Failed() {
			t.Logf("gateway A log (last start):\n%s", tail(r.log.String(), 6000))
		}
	})
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startA starts a new process of gateway A and waits until it runs.
func (r *restartRun) startA() {
	t := r.t
	var cmd *exec.Cmd
	env := append(os.Environ(), "ISTHMUS_RUN_HELPER="+filepath.Join(r.dir, "a.toml"), "ISTHMUS_RUN_DRAIN=1s")
	if r.activated {
		// systemd sets LISTEN_PID to the pid of the process it execs; a
		// shell that execs the gateway keeps its pid.
		cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestRunHelper$")
		cmd.ExtraFiles = r.files
		env = append(env, "LISTEN_FDS=2", "LISTEN_FDNAMES=s2s:link")
	} else {
		cmd = exec.Command(os.Args[0], "-test.run=^TestRunHelper$")
	}
	cmd.Env = env
	cmd.Dir = r.dir
	r.log = &syncBuffer{}
	cmd.Stderr = r.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd, r.exited = cmd, make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, r.exited)
	r.starts++
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.log.String(), "isthmus: running") {
		select {
		case err := <-r.exited:
			t.Fatalf("gateway A exited at start: %v\n%s", err, r.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway A did not start:\n%s", r.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.activated && !strings.Contains(r.log.String(), "sockets passed by systemd") {
		t.Fatalf("gateway A did not take the inherited sockets:\n%s", r.log.String())
	}
}

// restartA stops gateway A (SIGTERM, or SIGKILL and restartGap) and starts
// it again.
func (r *restartRun) restartA(kill bool) {
	t := r.t
	if kill {
		r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
		time.Sleep(restartGap)
	} else {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-r.exited:
			if err != nil {
				t.Errorf("gateway A exit after SIGTERM: %v\n%s", err, r.log.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("gateway A still running 20s after SIGTERM:\n%s", r.log.String())
		}
		if s := r.log.String(); !strings.Contains(s, "isthmus: stopped") {
			t.Errorf("gateway A did not stop cleanly:\n%s", s)
		}
	}
	r.startA()
}

// traffic sends restartMsgs messages each way over restartSendFor, calls
// restart at restartAt, and waits for every message to be delivered or
// bounced (at most 60s).
func (r *restartRun) traffic(restart func()) {
	start := time.Now()
	var wg sync.WaitGroup
	for _, d := range []struct {
		from *localServer
		to   string
	}{{r.sa, "b.test"}, {r.sb, "a.test"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := restartSendFor / restartMsgs
			for i := range restartMsgs {
				if w := time.Until(start.Add(time.Duration(i) * every)); w > 0 {
					time.Sleep(w)
				}
				d.from.send(d.to, i)
			}
		}()
	}
	time.Sleep(time.Until(start.Add(restartAt)))
	restart()
	wg.Wait()
	// Wait until everything is delivered or bounced; after a kill -9 some
	// may be lost for good: stop when nothing moved for 5s.
	deadline := time.Now().Add(60 * time.Second)
	last, lastChange := -1, time.Now()
	for !(r.sa.settled(r.sb) && r.sb.settled(r.sa)) && time.Now().Before(deadline) && time.Since(lastChange) < 5*time.Second {
		if n := r.sa.progress() + r.sb.progress(); n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates show here
}
