// Package ejabberdtest runs a real ejabberd (Debian package "ejabberd",
// 23.01) for isthmus tests: in the foreground, on loopback, with its own
// config, spool and log directories, at Debian's secure S2S default
// (s2s_use_starttls: required), with a certificate for its domains from a
// test CA it trusts for S2S (s2s_cafile).
//
// ejabberd has no per-domain S2S route option: it resolves
// _xmpp-server._tcp.DOMAIN SRV records with Erlang's resolver, then the SRV
// target with libc. The server therefore gets its own resolver through the
// inetrc in its config directory (ejabberdctl --config-dir sets ERL_INETRC
// to it, overriding the environment): `{resolv_conf, ""}.` first (or OTP
// reads /etc/resolv.conf after the inetrc and replaces the name server),
// then the loopback [DNS] stub, whose SRV answers name "localhost." — a
// target /etc/hosts knows.
//
// When ejabberd is not installed, [Require] (and so [Start]) skips the
// test, except when the environment variable CI is set: then it fails.
package ejabberdtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/freeport"
	"github.com/isthmus-xmpp/isthmus/internal/serverproc"
	"github.com/isthmus-xmpp/isthmus/internal/testpki"
)

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	ctl          = "/usr/sbin/ejabberdctl"
	startedLine  = "is started in the node"
)

// Available reports whether ejabberd is installed.
func Available() bool {
	_, err := os.Stat(ctl)
	return err == nil
}

// Require skips the test when ejabberd is not installed, or fails it when
// the environment variable CI is set (CI must run the real-server tests).
// ejabberdctl runs only as root or as the ejabberd user.
func Require(t testing.TB) {
	t.Helper()
	msg := ""
	switch {
	case !Available():
		msg = "ejabberd not installed: apt-get install ejabberd (or run .ci/run)"
	case os.Geteuid() != 0:
		if u, err := user.Current(); err != nil || u.Username != "ejabberd" {
			msg = "ejabberdctl runs only as root or as the ejabberd user"
		}
	}
	if msg != "" {
		serverproc.Unavailable(t, "ejabberdtest", msg)
	}
}

// Options configure one ejabberd.
type Options struct {
	Domain string            // the one virtual host, e.g. "ej.test"
	MUC    bool              // serve MUC at conference.Domain
	Users  map[string]string // local part -> password, registered after start
	// DNSPort is the UDP port of the name server ejabberd uses (see [DNS]).
	DNSPort int
	// TLS is the server's certificate (for Domain and, with MUC,
	// conference.Domain) and the CA its S2S peers' certificates are
	// checked against. Required: S2S STARTTLS is required.
	TLS testpki.Files
	// S2SStartTLS is s2s_use_starttls: "" is "required" (Debian's
	// default); "false" makes S2S plain, for recording it (internal/capture).
	S2SStartTLS string
	// MUCHistory is mod_muc's history_size (default 0: no history).
	MUCHistory int
	// Modules is appended under "modules:" (lines indented by two
	// spaces, e.g. "  mod_vcard: {}").
	Modules string
	// LogLevel: "info" (default) or "debug".
	LogLevel string
	// Extra is appended to ejabberd.yml (top-level options).
	Extra string
}

// Server is a running ejabberd.
type Server struct {
	Domain  string
	C2SAddr string
	S2SAddr string
	Dir     string
	LogPath string

	env  []string
	cred *syscall.Credential
	proc *serverproc.Proc
}

// MUCDomain is the MUC service's domain (with Options.MUC).
func (s *Server) MUCDomain() string { return "conference." + s.Domain }

// JID returns user@Domain.
func (s *Server) JID(user string) string { return user + "@" + s.Domain }

// Start writes the configuration, starts ejabberd in the foreground, waits
// until it is started and registers the users. t.Cleanup stops it (and
// prints its log when the test failed).
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	Require(t)
	s, err := serverproc.Retry(t, 3, func(int) (*Server, error) { return start(t, opt) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ejabberdtest: %s up: c2s %s, s2s %s, log %s", s.Domain, s.C2SAddr, s.S2SAddr, s.LogPath)
	return s
}

func start(t testing.TB, opt Options) (*Server, error) {
	if opt.Domain == "" || opt.DNSPort == 0 || opt.TLS.Cert == "" {
		return nil, errors.New("ejabberdtest: Domain, DNSPort and TLS are required")
	}
	// Not t.TempDir: its parents are private to root, and ejabberd runs as
	// its own user.
	dir, err := os.MkdirTemp("", "isthmus-ejabberd-")
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: %w", err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	// c2s, s2s and the Erlang distribution port.
	ports, err := freeport.Ports("tcp", 3)
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: %w", err)
	}
	s := &Server{
		Domain:  opt.Domain,
		C2SAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		S2SAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		Dir:     dir,
		LogPath: filepath.Join(dir, "log", "ejabberd.log"),
	}
	for _, sub := range []string{"log", "spool", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("ejabberdtest: %w", err)
		}
	}
	// Certificates are copied in: ejabberd reads them as its own user.
	cert, key, ca := filepath.Join(dir, "certs", "server.crt"), filepath.Join(dir, "certs", "server.key"), filepath.Join(dir, "certs", "ca.crt")
	for src, dst := range map[string]string{opt.TLS.Cert: cert, opt.TLS.Key: key, opt.TLS.CA: ca} {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("ejabberdtest: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o640); err != nil {
			return nil, fmt.Errorf("ejabberdtest: %w", err)
		}
	}
	var nb [6]byte
	_, _ = rand.Read(nb[:])
	node := "isthmus-" + hex.EncodeToString(nb[:]) + "@localhost"
	files := map[string]string{
		"ejabberd.yml":    Config(opt, ports[0], ports[1], cert, key, ca),
		"inetrc":          Inetrc(opt.DNSPort),
		"ejabberdctl.cfg": fmt.Sprintf("ERLANG_NODE=%s\nERL_DIST_PORT=%d\nERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\nEJABBERD_PID_PATH=%s\n", node, ports[2], filepath.Join(dir, "ejabberd.pid")),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640); err != nil {
			return nil, fmt.Errorf("ejabberdtest: %w", err)
		}
	}
	s.env = append(os.Environ(), "HOME="+dir, "LANG=C.UTF-8")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("ejabberd")
		if err != nil {
			return nil, fmt.Errorf("ejabberdtest: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := chownAll(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	// ejabberdctl runs erl as its child: Group lets Stop reach it. After
	// SIGTERM the script's shell dies of the signal, so its exit status
	// says nothing (no CleanExit).
	s.proc, err = serverproc.Start(s.command("foreground"), serverproc.Options{
		Name:        "ejabberd",
		Output:      filepath.Join(dir, "stdout.log"),
		Logs:        []string{s.LogPath, filepath.Join(dir, "log", "error.log")},
		Group:       true,
		StopTimeout: stopTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: %w", err)
	}
	s.proc.StopAtCleanup(t, "ejabberdtest: "+s.Domain)
	if err := s.waitReady(); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("ejabberdtest: %s: %w\nlog:\n%s", s.Domain, err, s.Log())
	}
	if err := s.register(opt.Users); err != nil {
		return nil, err
	}
	return s, nil
}

// command runs ejabberdctl with this server's directories.
func (s *Server) command(args ...string) *exec.Cmd {
	all := append([]string{"--config-dir", s.Dir, "--logs", filepath.Join(s.Dir, "log"), "--spool", filepath.Join(s.Dir, "spool")}, args...)
	cmd := exec.Command(ctl, all...)
	cmd.Dir = s.Dir
	cmd.Env = s.env
	// SIGTERM if the test binary dies without its cleanups (serverproc
	// sets this, and a process group, for the server itself).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Credential: s.cred}
	return cmd
}

func chownAll(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("ejabberdtest: %w", err)
		}
		return nil
	})
}

// waitReady waits until ejabberd's log says it started and both ports
// accept. An ejabberd that exits on a taken port says so on stdout or in
// its log: that failure is marked [serverproc.ErrAddrInUse].
func (s *Server) waitReady() error {
	started := func(log string) (bool, error) { return strings.Contains(log, startedLine), nil }
	err := s.proc.WaitReady(startTimeout, 50*time.Millisecond, started, s.C2SAddr, s.S2SAddr)
	if errors.Is(err, serverproc.ErrExited) {
		if log := s.Log(); strings.Contains(log, "eaddrinuse") || strings.Contains(log, "Overlapping listeners") {
			return fmt.Errorf("%w: %w", err, serverproc.ErrAddrInUse)
		}
	}
	return err
}

// register adds users with ejabberdctl (in parallel: each call starts an
// Erlang VM).
func (s *Server) register(users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, u := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := s.command("register", u, s.Domain, users[u])
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("ejabberdtest: register %s@%s: %w: %s", u, s.Domain, err, out)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stop terminates ejabberd (SIGTERM to its process group, SIGKILL after a
// grace period) and waits for it. It may be called more than once.
func (s *Server) Stop() error { return s.proc.Stop() }

// Log returns ejabberd's log, its error log and what it wrote to
// stdout/stderr.
func (s *Server) Log() string { return s.proc.Log() }
