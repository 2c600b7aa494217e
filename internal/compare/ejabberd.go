package compare

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ejabberd is a running ejabberd 23.01 (Debian package), in the foreground
// with its own config, spool and log directories, under a node name of its
// own (so that it does not collide with another ejabberd on the machine).
type ejabberd struct {
	domain  string
	c2sAddr string
	s2sAddr string
	dir     string
	node    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

type ejabberdOptions struct {
	domain  string
	muc     string // MUC service host, e.g. "conference.b.test"
	users   map[string]string
	dnsPort int    // the DNS stub ejabberd resolves S2S SRV records with
	certPEM []byte // certificate for domain and muc, then its key
	caPEM   []byte // the CA that S2S peers' certificates are checked against
}

// ejabberdAvailable says whether ejabberdctl is installed.
func ejabberdAvailable() bool {
	_, err := exec.LookPath("ejabberdctl")
	return err == nil
}

// ejabberdConfig renders ejabberd.yml: one virtual host, c2s and S2S on
// loopback, STARTTLS optional on S2S (see the package doc), dialback,
// MUC, ping, version, disco; no shapers (they would throttle the
// loopback legs, not the emulated link).
func ejabberdConfig(o ejabberdOptions, c2s, s2s int, dir string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# written by isthmus internal/compare")
	p("hosts: [%q]", o.domain)
	p("loglevel: info")
	p("log_rotate_count: 0")
	p("certfiles: [%q]", filepath.Join(dir, "server.pem"))
	p("ca_file: %q", filepath.Join(dir, "ca.pem"))
	p("s2s_use_starttls: optional")
	p("s2s_protocol_options: [no_sslv3, no_tlsv1, no_tlsv1_1, no_compression]")
	p("outgoing_s2s_families: [ipv4]")
	p("s2s_dns_timeout: 5")
	p("auth_method: internal")
	p("auth_password_format: scram")
	p("listen:")
	p("  - port: %d", c2s)
	p("    ip: \"127.0.0.1\"")
	p("    module: ejabberd_c2s")
	p("    max_stanza_size: 262144")
	p("    access: c2s")
	p("  - port: %d", s2s)
	p("    ip: \"127.0.0.1\"")
	p("    module: ejabberd_s2s_in")
	p("    max_stanza_size: 524288")
	p("acl:")
	p("  local:")
	p("    user_regexp: \"\"")
	p("access_rules:")
	p("  local:")
	p("    allow: local")
	p("  c2s:")
	p("    allow: all")
	p("  muc_create:")
	p("    allow: all")
	p("  muc:")
	p("    allow: all")
	p("modules:")
	p("  mod_disco: {}")
	p("  mod_muc:")
	p("    host: %q", o.muc)
	p("    access: muc")
	p("    access_create: muc_create")
	p("    history_size: 0")
	p("    default_room_options:")
	p("      mam: false")
	p("  mod_ping: {}")
	p("  mod_roster: {}")
	p("  mod_s2s_dialback: {}")
	p("  mod_version:")
	p("    show_os: false")
	return b.String()
}

// startEjabberd writes the config, starts ejabberd and registers users.
// Its files live in a directory the ejabberd user can read (ejabberdctl
// runs the server as that user when started by root).
func startEjabberd(t testing.TB, o ejabberdOptions) *ejabberd {
	t.Helper()
	dir, err := os.MkdirTemp("", "isthmus-compare-ejabberd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	c2s, s2s := freePort(t), freePort(t)
	e := &ejabberd{
		domain:  o.domain,
		c2sAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s)),
		s2sAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(s2s)),
		dir:     dir,
		node:    fmt.Sprintf("isthmus-compare-%d-%d@localhost", os.Getpid(), c2s),
		done:    make(chan struct{}),
	}
	files := map[string]string{
		"ejabberd.yml": ejabberdConfig(o, c2s, s2s, dir),
		// ejabberdctl sets ERL_INETRC to this file. resolv_conf "" must come
		// first, or /etc/resolv.conf replaces the nameserver below.
		"inetrc":          fmt.Sprintf("{resolv_conf, \"\"}.\n{nameserver, {127,0,0,1}, %d}.\n{lookup, [\"file\", \"native\"]}.\n{host, {127,0,0,1}, [\"localhost\"]}.\n", o.dnsPort),
		"server.pem":      string(o.certPEM),
		"ca.pem":          string(o.caPEM),
		"ejabberdctl.cfg": fmt.Sprintf("ERLANG_NODE=%s\nERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\n", e.node),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"spool", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := chownTree(dir, "ejabberd"); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command("ejabberdctl", e.ctlArgs("foreground")...)
	e.cmd.Dir = dir
	e.cmd.Stdout, e.cmd.Stderr = out, out
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("compare: start ejabberd: %v", err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		out.Close()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("ejabberd log (%s):\n%s", dir, tail(e.log(), 8000))
		}
	})
	if err := e.waitReady(60 * time.Second); err != nil {
		t.Fatalf("compare: ejabberd %s: %v\nlog:\n%s", o.domain, err, tail(e.log(), 8000))
	}
	for u, pw := range o.users {
		cmd := exec.Command("ejabberdctl", e.ctlArgs("register", u, o.domain, pw)...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("compare: ejabberdctl register %s@%s: %v: %s", u, o.domain, err, b)
		}
	}
	t.Logf("ejabberd %s up: c2s %s, s2s %s, dir %s", o.domain, e.c2sAddr, e.s2sAddr, dir)
	return e
}

func (e *ejabberd) ctlArgs(args ...string) []string {
	return append([]string{"--config-dir", e.dir, "--spool", filepath.Join(e.dir, "spool"),
		"--logs", filepath.Join(e.dir, "log")}, args...)
}

// waitReady waits until both ports accept and the node answers
// `ejabberdctl status`.
func (e *ejabberd) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, a := range []string{e.c2sAddr, e.s2sAddr} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			cmd := exec.Command("ejabberdctl", e.ctlArgs("status")...)
			cmd.Dir = e.dir
			if err := cmd.Run(); err == nil {
				return nil
			}
		}
		select {
		case <-e.done:
			return fmt.Errorf("exited before listening: %v", e.waitErr)
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready on %s and %s after %v", e.c2sAddr, e.s2sAddr, limit)
		}
	}
}

// stop asks the node to stop, then kills the process group it runs in
// (ejabberdctl, su and the Erlang VM, all started by us).
func (e *ejabberd) stop() {
	select {
	case <-e.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ejabberdctl", e.ctlArgs("stop")...)
	cmd.Dir = e.dir
	_ = cmd.Run()
	select {
	case <-e.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.done
	}
}

func (e *ejabberd) log() string {
	var b strings.Builder
	for _, f := range []string{filepath.Join(e.dir, "log", "ejabberd.log"), filepath.Join(e.dir, "log", "error.log"), filepath.Join(e.dir, "stdout.log")} {
		if data, err := os.ReadFile(f); err == nil {
			fmt.Fprintf(&b, "--- %s\n%s", f, data)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// chownTree gives dir and everything under it to the system user name,
// when running as root (ejabberdctl then runs ejabberd as that user).
func chownTree(dir, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := osuser.Lookup(name)
	if err != nil {
		return fmt.Errorf("compare: user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("compare: chown %s: %w", path, err)
		}
		return nil
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
