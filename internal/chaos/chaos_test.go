package chaos

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/freeport"
	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"github.com/isthmus-xmpp/isthmus/gateway/s2s"
	"github.com/isthmus-xmpp/isthmus/link/emu"
)

var full = flag.Bool("chaos.full", false, "run the full chaos test (10,000 messages, outages every 20-40s)")

// params of one run.
type params struct {
	transport string
	profile   string
	messages  int           // both ways together
	sendFor   time.Duration // spread the sends over this long
	maxDrain  time.Duration
}

func shortParams(transport string) params {
	p := params{transport: transport, messages: 2000, sendFor: 40 * time.Second, maxDrain: 90 * time.Second}
	p.profile = "bgan-64k,outage=12s-20s/3s-6s"
	if transport != "tcp" {
		p.profile = "bgan-64k,loss=0.05,outage=12s-20s/3s-6s"
	}
	return p
}

func fullParams(transport string) params {
	p := params{transport: transport, messages: 10000, sendFor: 150 * time.Second, maxDrain: 5 * time.Minute}
	p.profile = "bgan-64k,outage=20s-40s/5s-15s"
	if transport != "tcp" {
		p.profile = "bgan-64k,loss=0.05,outage=20s-40s/5s-15s"
	}
	return p
}

func TestChaosTCP(t *testing.T)  { chaos(t, "tcp") }
func TestChaosQUIC(t *testing.T) { chaos(t, "quic") }

func TestChaosDatagram(t *testing.T) { chaos(t, "datagram") }

func chaos(t *testing.T, transport string) {
	if testing.Short() {
		t.Skip("chaos test runs processes for a minute or more")
	}
	t.Parallel()
	p := shortParams(transport)
	if *full {
		p = fullParams(transport)
	}
	r := newRun(t, p)
	r.run()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func isthmusBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "isthmus-chaos-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "isthmus")
		// go test puts its own GOROOT/bin first on the PATH.
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/isthmus-xmpp/isthmus/cmd/isthmus").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T, udp bool) int {
	if udp {
		return freeport.UDP(t)
	}
	return freeport.TCP(t)
}

// sim is a simulated local XMPP server: it hosts one domain and reaches the
// other side's domain through its gateway.
type sim struct {
	domain, secret string
	ln             net.Listener
	srv            *s2s.Server
	pool           *s2s.Pool
	rx             *receiver
	bounced        chan s2s.Stanza
}

type gwProc struct {
	name, config string
	s2sAddr      string
	cmd          *exec.Cmd
	done         chan struct{}
	log          *os.File
}

type run struct {
	t      *testing.T
	p      params
	dir    string
	bin    string
	ga, gb *gwProc
	sa, sb *sim
	pauseA sync.RWMutex // held exclusively while gateway A is killed and restarted
	pauseB sync.RWMutex // held exclusively while gateway B is killed and restarted
}

func newRun(t *testing.T, p params) *run {
	return &run{t: t, p: p, dir: t.TempDir(), bin: isthmusBinary(t)}
}

// receiver checks exactly-once, in-order delivery per pair.
type receiver struct {
	mu      sync.Mutex // guards the following fields
	seen    map[string]bool
	last    map[string]int
	dup     int
	reorder int
	errors  int
	count   int
	dupIDs  []string
	resent  int
}

func newReceiver() *receiver { return &receiver{seen: map[string]bool{}, last: map[string]int{}} }

func (r *receiver) deliver(st s2s.Stanza) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.Type == "error" {
		r.errors++
		return
	}
	if st.Name != "message" {
		return
	}
	pair, seqs, ok := strings.Cut(st.ID, "#")
	if !ok {
		return
	}
	seq, _ := strconv.Atoi(seqs)
	if r.seen[st.ID] {
		r.dup++
		if len(r.dupIDs) < 20 {
			r.dupIDs = append(r.dupIDs, st.ID)
		}
		return
	}
	r.seen[st.ID] = true
	r.count++
	if last, ok := r.last[pair]; ok && seq < last {
		r.reorder++
	}
	r.last[pair] = max(r.last[pair], seq)
}

func (r *receiver) snapshot() (count, dup, reorder, errs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.dup, r.reorder, r.errors
}

func (r *run) newSim(ctx context.Context, domain, gwAddr string, wg *sync.WaitGroup) *sim {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	s := &sim{domain: domain, secret: "sim-secret-" + domain + "-0123456789", ln: ln, rx: newReceiver(), bounced: make(chan s2s.Stanza, 100000)}
	resolve := func(d string) (string, error) {
		if d == domain {
			return ln.Addr().String(), nil
		}
		return gwAddr, nil
	}
	quiet := slog.New(slog.DiscardHandler)
	lim := s2s.Limits{QueueLimit: 100000}
	s.srv = s2s.NewServer(s2s.ServerConfig{
		Hosts: func(d string) bool { return d == domain }, Resolve: resolve, Secret: s.secret,
		Deliver: s.rx.deliver, Logger: quiet, Limits: lim,
	})
	s.pool = s2s.NewPool(s2s.PoolConfig{
		Resolve: resolve, Secret: s.secret, Logger: quiet, Limits: lim,
		Bounce: func(st s2s.Stanza, cond string) { s.bounced <- st },
	})
	wg.Add(2)
	go func() { defer wg.Done(); s.srv.Serve(ctx, ln) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.pool.Close() }()
	return s
}

func (r *run) writeConfigs(simA, simB string, portA, portB, linkB, relay int) {
	ka, _ := linkkey.GenerateKey()
	kb, _ := linkkey.GenerateKey()
	for _, k := range []struct {
		name string
		key  ed25519.PrivateKey
	}{{"a", ka}, {"b", kb}} {
		pem, _ := linkkey.MarshalPrivateKey(k.key)
		os.WriteFile(filepath.Join(r.dir, k.name+".key"), pem, 0o600)
	}
	pub := func(k ed25519.PrivateKey) string { return linkkey.FormatPublicKey(k.Public().(ed25519.PublicKey)) }
	common := fmt.Sprintf(`[link]
transport = %q
rate_bps = 64000
keepalive = "10s"
reconnect_min = "200ms"
reconnect_max = "2s"
`, r.p.transport)
	a := fmt.Sprintf(`name = "a"
log_level = "info"
summary_interval = "0s"
state_dir = "state-a"
remote_domains = ["b.test"]
[local_domains]
"a.test" = %q
%sdial = "127.0.0.1:%d"
key_file = "a.key"
peer_key = %q
[s2s]
listen = "127.0.0.1:%d"
dialback_secret = "gateway-a-secret-0123456789"
queue_limit = 100000
`, simA, common, relay, pub(kb), portA)
	b := fmt.Sprintf(`name = "b"
log_level = "info"
summary_interval = "0s"
state_dir = "state-b"
remote_domains = ["a.test"]
[local_domains]
"b.test" = %q
%slisten = "127.0.0.1:%d"
key_file = "b.key"
peer_key = %q
[s2s]
listen = "127.0.0.1:%d"
dialback_secret = "gateway-b-secret-0123456789"
queue_limit = 100000
`, simB, common, linkB, pub(ka), portB)
	os.WriteFile(filepath.Join(r.dir, "a.toml"), []byte(a), 0o600)
	os.WriteFile(filepath.Join(r.dir, "b.toml"), []byte(b), 0o600)
}

func (r *run) start(g *gwProc) {
	cmd := exec.Command(r.bin, "run", g.config)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	g.cmd, g.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(g.done) }()
	// Wait for its S2S port.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", g.s2sAddr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(g.log.Name())
	r.t.Fatalf("gateway %s did not start:\n%s", g.name, b)
}

func (r *run) kill(g *gwProc, pause *sync.RWMutex) {
	pause.Lock()
	time.Sleep(300 * time.Millisecond) // the S2S hop drains (see the package doc)
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.done
	r.t.Logf("killed gateway %s", g.name)
	time.Sleep(time.Second)
	r.start(g)
	pause.Unlock()
}

func (r *run) stop(g *gwProc) {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			g.cmd.Process.Kill()
			<-g.done
		}
	}
	g.log.Close()
}

const pairs = 10

func (r *run) run() {
	t := r.t
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	portA, portB := freePort(t, false), freePort(t, false)
	udp := r.p.transport != "tcp"
	linkB, relay := freePort(t, udp), freePort(t, udp)
	r.sa = r.newSim(ctx, "a.test", fmt.Sprintf("127.0.0.1:%d", portA), &wg)
	r.sb = r.newSim(ctx, "b.test", fmt.Sprintf("127.0.0.1:%d", portB), &wg)
	r.writeConfigs(r.sa.ln.Addr().String(), r.sb.ln.Addr().String(), portA, portB, linkB, relay)

	prof, err := emu.ParseProfile(r.p.profile)
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("127.0.0.1:%d", linkB)
	wg.Add(1)
	if udp {
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", relay))
		if err != nil {
			t.Fatal(err)
		}
		go func() { defer wg.Done(); emu.RelayUDP(ctx, prof, 1, pc, target) }()
	} else {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", relay))
		if err != nil {
			t.Fatal(err)
		}
		go func() { defer wg.Done(); emu.RelayTCP(ctx, prof, 1, ln, target) }()
	}

	mk := func(name string, port int) *gwProc {
		f, err := os.Create(filepath.Join(r.dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		return &gwProc{name: name, config: name + ".toml", s2sAddr: fmt.Sprintf("127.0.0.1:%d", port), log: f}
	}
	r.ga, r.gb = mk("a", portA), mk("b", portB)
	r.start(r.gb)
	r.start(r.ga)
	defer func() {
		r.stop(r.ga)
		r.stop(r.gb)
		if t.Failed() {
			for _, n := range []string{"a.log", "b.log"} {
				b, _ := os.ReadFile(filepath.Join(r.dir, n))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("tail of %s:\n%s", n, b)
			}
		}
	}()

	// Senders: half the messages each way, spread over sendFor.
	per := r.p.messages / 2
	start := time.Now()
	var sendWG sync.WaitGroup
	send := func(from *sim, fromDom, toDom string, pause *sync.RWMutex) {
		defer sendWG.Done()
		interval := r.p.sendFor / time.Duration(per)
		for i := range per {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			pair := i % pairs
			st := s2s.Stanza{Name: "message", From: fmt.Sprintf("u%d@%s/r", pair, fromDom), To: fmt.Sprintf("v%d@%s", pair, toDom),
				ID: fmt.Sprintf("%s>%s-%d#%d", fromDom, toDom, pair, i/pairs)}
			st.Raw = fmt.Appendf(nil, "<message from='%s' to='%s' id='%s' type='chat'><body>chaos message %d of %d</body></message>", st.From, st.To, st.ID, i, per)
			pause.RLock()
			from.pool.Send(st)
			pause.RUnlock()
			// Resend what the pool bounced as never written.
			for drained := false; !drained; {
				select {
				case b := <-from.bounced:
					from.rx.mu.Lock()
					from.rx.resent++
					from.rx.mu.Unlock()
					pause.RLock()
					from.pool.Send(b)
					pause.RUnlock()
				default:
					drained = true
				}
			}
		}
	}
	sendWG.Add(2)
	go send(r.sa, "a.test", "b.test", &r.pauseA)
	go send(r.sb, "b.test", "a.test", &r.pauseB)
	time.Sleep(r.p.sendFor * 3 / 10)
	r.kill(r.ga, &r.pauseA)
	time.Sleep(r.p.sendFor * 3 / 10)
	r.kill(r.gb, &r.pauseB)
	sendWG.Wait()
	sentAt := time.Now()

	// Drain: wait for everything (resending late pool bounces).
	deadline := sentAt.Add(r.p.maxDrain)
	var drain time.Duration
	for {
		for _, s := range []*sim{r.sa, r.sb} {
			for drained := false; !drained; {
				select {
				case b := <-s.bounced:
					s.pool.Send(b)
				default:
					drained = true
				}
			}
		}
		na, _, _, _ := r.sa.rx.snapshot()
		nb, _, _, _ := r.sb.rx.snapshot()
		if na >= per && nb >= per {
			drain = time.Since(sentAt)
			break
		}
		if time.Now().After(deadline) {
			drain = time.Since(sentAt)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // late duplicates would show here
	na, da, ra, ea := r.sa.rx.snapshot()
	nb, db, rb, eb := r.sb.rx.snapshot()
	lost := 2*per - na - nb
	line := fmt.Sprintf("lost=%d duplicated=%d reordered=%d drain_s=%.1f", lost, da+db, ra+rb, drain.Seconds())
	fmt.Printf("chaos %s %s messages=%d: %s\n", r.p.transport, r.p.profile, 2*per, line)
	t.Log(line)
	t.Logf("a received %d dup %v; b received %d dup %v; resent after pool bounce a=%d b=%d", na, r.sa.rx.dupIDs, nb, r.sb.rx.dupIDs, r.sa.rx.resent, r.sb.rx.resent)
	if lost != 0 || da+db != 0 || ra+rb != 0 || ea+eb != 0 {
		t.Errorf("%s (error replies %d)", line, ea+eb)
	}
}
