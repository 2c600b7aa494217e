package prosodytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/freeport"
	"github.com/isthmus-xmpp/isthmus/internal/serverproc"
)

// startTimeout bounds how long Start waits for Prosody to accept on both
// ports.
const startTimeout = 20 * time.Second

// stopTimeout bounds how long a stop waits after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// Available reports the path of the prosody binary and whether prosody and
// prosodyctl are both installed.
func Available() (path string, ok bool) {
	p, err := exec.LookPath("prosody")
	if err != nil {
		return "", false
	}
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		return "", false
	}
	return p, true
}

// Require skips the test when prosody is not installed, or fails it when the
// environment variable CI is set (CI must run the real-server tests).
func Require(t testing.TB) {
	t.Helper()
	if _, ok := Available(); !ok {
		serverproc.Unavailable(t, "prosodytest", "prosody not installed: apt-get install prosody (or run .ci/run)")
	}
}

// RosterItem is one contact in a user's roster.
type RosterItem struct {
	JID          string   // bare JID of the contact
	Subscription string   // "none", "to", "from" or "both"
	Name         string   // optional display name
	Groups       []string // optional groups
}

// Both returns roster items with subscription "both" for each bare JID.
func Both(jids ...string) []RosterItem {
	items := make([]RosterItem, 0, len(jids))
	for _, j := range jids {
		items = append(items, RosterItem{JID: j, Subscription: "both"})
	}
	return items
}

// Options configure one Prosody server.
type Options struct {
	// Domain is the one VirtualHost, e.g. "a.test". Required.
	Domain string
	// Users maps local part to password; each is registered with prosodyctl
	// before start.
	Users map[string]string
	// Overrides maps a remote domain to the "host:port" that outgoing S2S for
	// it connects to (an isthmus gateway's S2S listener or another Prosody).
	Overrides map[string]string
	// DialbackSecret sets Prosody's dialback_secret when not empty.
	DialbackSecret string
	// Rosters maps a local user (local part) to the roster written into
	// Prosody's storage before start.
	Rosters map[string][]RosterItem
	// C2SPort and S2SPort fix the listening ports; 0 picks a free port. Fix
	// S2SPort (see [FreePort]) when another server's Overrides must point at
	// this server before it starts.
	C2SPort, S2SPort int
	// LogLevel is the minimum level written to the log file: "debug" (the
	// default) or "info". Higher levels are lowered to "info": Start reads
	// the log to learn that Prosody bound its ports.
	LogLevel string
	// ExtraConfig is appended verbatim to the global section of the config.
	ExtraConfig string
	// TLS, when set, runs Prosody at its secure S2S defaults
	// (s2s_require_encryption = true, s2s_secure_auth left at its
	// default) with this certificate and key, trusting peers whose
	// certificates the CA file signed. Empty: plain S2S (see the package
	// doc). Client connections stay plain either way.
	TLS TLSFiles
}

// TLSFiles are a PEM certificate, its key and a CA file.
type TLSFiles struct {
	Cert, Key, CA string
}

// Server is a running Prosody.
type Server struct {
	Domain  string
	C2SAddr string // "127.0.0.1:port" for clients
	S2SAddr string // "127.0.0.1:port" for servers and gateways
	Dir     string // holds prosody.cfg.lua, data/, prosody.log

	ConfigPath string
	LogPath    string

	proc *serverproc.Proc
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// It is never one another call in this process returned ([freeport]).
func FreePort(t testing.TB) int {
	t.Helper()
	return freeport.TCP(t)
}

// PluginDir returns the folder holding isthmus's Prosody plugins
// (testdata/prosody/plugins).
func PluginDir() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "testdata", "prosody", "plugins"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "testdata", "prosody", "plugins"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "mod_s2s_connect_override.lua")); err == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", errors.New("prosodytest: testdata/prosody/plugins/mod_s2s_connect_override.lua not found")
}

// Start writes a config, registers users, writes rosters, starts Prosody and
// waits until both ports accept. t.Cleanup stops it and, when the test
// failed, prints its log.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	Require(t)
	if opt.Domain == "" {
		t.Fatal("prosodytest: Options.Domain is empty")
	}
	plugins, err := PluginDir()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	tries := 3
	if opt.C2SPort != 0 && opt.S2SPort != 0 {
		tries = 1 // the caller fixed both ports: there are no others to try
	}
	s, err := serverproc.Retry(t, tries, func(attempt int) (*Server, error) {
		return start(t, opt, filepath.Join(base, fmt.Sprintf("run%d", attempt)), plugins)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prosodytest: %s up: c2s %s, s2s %s, log %s", s.Domain, s.C2SAddr, s.S2SAddr, s.LogPath)
	return s
}

// startedMarker is logged by mod_s2s_connect_override on "server-started",
// once every module (mod_posix's SIGTERM handler too) is loaded.
const startedMarker = "isthmus: server started"

func start(t testing.TB, opt Options, dir, plugins string) (*Server, error) {
	t.Helper()
	prosody, _ := Available()
	c2s, s2s := opt.C2SPort, opt.S2SPort
	var err error
	if c2s == 0 || s2s == 0 {
		ps, err := freeport.Ports("tcp", 2)
		if err != nil {
			return nil, fmt.Errorf("prosodytest: %w", err)
		}
		if c2s == 0 {
			c2s = ps[0]
		}
		if s2s == 0 {
			s2s = ps[1]
		}
	}
	s := &Server{
		Domain:     opt.Domain,
		C2SAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s)),
		S2SAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(s2s)),
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "prosody.cfg.lua"),
		LogPath:    filepath.Join(dir, "prosody.log"),
	}
	cfg, err := Config(opt, dir, plugins, c2s, s2s)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("prosodytest: %w", err)
		}
	}
	if err := os.WriteFile(s.ConfigPath, []byte(cfg), 0o640); err != nil {
		return nil, fmt.Errorf("prosodytest: %w", err)
	}
	if err := s.register(opt.Users); err != nil {
		return nil, err
	}
	for user, items := range opt.Rosters {
		if err := WriteRoster(filepath.Join(dir, "data"), opt.Domain, user, items); err != nil {
			return nil, err
		}
	}

	cmd := exec.Command(prosody, "--config", s.ConfigPath, "-F")
	cmd.Dir = dir
	// Prosody handles SIGTERM (mod_posix) and exits with status 0.
	s.proc, err = serverproc.Start(cmd, serverproc.Options{
		Name:        "prosody",
		Output:      filepath.Join(dir, "stdout.log"),
		Logs:        []string{s.LogPath},
		StopTimeout: stopTimeout,
		CleanExit:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("prosodytest: %w", err)
	}
	s.proc.StopAtCleanup(t, "prosodytest: "+s.Domain)

	if err := s.waitReady(opt.LogLevel == "" || opt.LogLevel == "debug"); err != nil {
		_ = s.Stop()
		if errors.Is(err, serverproc.ErrAddrInUse) {
			return nil, fmt.Errorf("prosodytest: %s: %w", s.Domain, err)
		}
		return nil, fmt.Errorf("prosodytest: %s: %w\nlog:\n%s", s.Domain, err, s.Log())
	}
	return s, nil
}

// register adds users with prosodyctl, before the server runs.
func (s *Server) register(users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		cmd := exec.Command("prosodyctl", "--config", s.ConfigPath, "register", u, s.Domain, users[u])
		cmd.Dir = s.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("prosodytest: register %s@%s: %w: %s", u, s.Domain, err, out)
		}
	}
	return nil
}

// waitReady waits until Prosody's log says it bound both ports and has
// finished starting, and both ports accept, the process exits, or the
// start time-out passes. Prosody keeps running when a port is taken, and
// a taken port accepts (someone else's listener), so the log is the
// authority on whether the ports are ours. With debugLog (the log shows
// s2s sessions) it also waits until the s2s probe is gone.
func (s *Server) waitReady(debugLog bool) error {
	want := []string{
		fmt.Sprintf("Activated service 'c2s' on [127.0.0.1]:%s", port(s.C2SAddr)),
		fmt.Sprintf("Activated service 's2s' on [127.0.0.1]:%s", port(s.S2SAddr)),
		startedMarker,
	}
	listening := func(log string) (bool, error) {
		if i := strings.Index(log, "Failed to open server port"); i >= 0 {
			line, _, _ := strings.Cut(log[i:], "\n")
			if strings.Contains(line, "in use") {
				return false, fmt.Errorf("%s: %w", line, serverproc.ErrAddrInUse)
			}
			return false, errors.New(line)
		}
		for _, w := range want {
			if !strings.Contains(log, w) {
				return false, nil
			}
		}
		return true, nil
	}
	if err := s.proc.WaitReady(startTimeout, 20*time.Millisecond, listening, s.C2SAddr, s.S2SAddr); err != nil {
		return err
	}
	// Wait (briefly) until Prosody has torn the s2s probe down: Prosody
	// 0.12.3 shutting down while an incoming s2s connection is still being
	// set up fails in mod_s2s ("attempt to call a nil value (method
	// 'close')") and then ignores SIGTERM, so a Stop right after Start
	// would have to kill it. Only a debug log shows the teardown.
	for deadline := time.Now().Add(2 * time.Second); debugLog && time.Now().Before(deadline); {
		log, _ := os.ReadFile(s.LogPath)
		if strings.Contains(string(log), "Destroying incoming session") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// Stop terminates Prosody (SIGTERM, then SIGKILL after a grace period) and
// waits for it. It may be called more than once.
func (s *Server) Stop() error { return s.proc.Stop() }

// Log returns Prosody's log file and whatever it wrote to stdout/stderr.
func (s *Server) Log() string { return s.proc.Log() }

// JID returns user@Domain.
func (s *Server) JID(user string) string { return user + "@" + s.Domain }
