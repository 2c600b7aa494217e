package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/internal/freeport"
)

// TestRunHelper is `isthmus run` inside a child process of TestRunSignals.
func TestRunHelper(t *testing.T) {
	cfg := os.Getenv("ISTHMUS_RUN_HELPER")
	if cfg == "" {
		t.Skip("helper process for TestRunSignals")
	}
	drain := "2s"
	if d := os.Getenv("ISTHMUS_RUN_DRAIN"); d != "" {
		drain = d
	}
	if err := runGateway([]string{"-drain", drain, cfg}); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func freePort(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.TCP(t)))
}

// `isthmus run` reloads on SIGHUP and stops cleanly on SIGTERM.
func TestRunSignals(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../testdata/configs/ship.toml")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("../../testdata/configs/ship.key")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ship.key"), key, 0o600)
	admin := freePort(t)
	conf := strings.NewReplacer(
		`admin_listen = "127.0.0.1:18080"`, `admin_listen = "`+admin+`"`,
		`listen = "127.0.0.1:15269"`, `listen = "`+freePort(t)+`"`,
		`dial = "127.0.0.1:17000"`, `dial = "`+freePort(t)+`"`, // nobody there: the link stays down
	).Replace(string(src))
	path := filepath.Join(dir, "ship.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunHelper$")
	cmd.Env = append(os.Environ(), "ISTHMUS_RUN_HELPER="+path)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog("isthmus: running")
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// SIGHUP with a changed safe setting and a changed restart-only one.
	conf = strings.Replace(conf, `log_level = "info"`, `log_level = "debug"`, 1)
	conf = strings.Replace(conf, `rate_bps = 9600`, `rate_bps = 2400`, 1)
	conf = strings.Replace(conf, `queue_limit = 1000`, `queue_limit = 500`, 1)
	os.WriteFile(path, []byte(conf), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`msg="isthmus: reloaded"`)
	log := stderr.String()
	if !strings.Contains(log, "applied=\"[log_level link.rate_bps]\"") || !strings.Contains(log, "keys=[s2s.queue_limit]") {
		t.Errorf("reload log:\n%s", log)
	}
	// A broken file is refused and the gateway keeps running.
	os.WriteFile(path, []byte("name = "), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("reload: configuration not applied")

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM:\n%s", stderr.String())
	}
	for _, want := range []string{"shutting down", "isthmus: stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
	if c, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		c.Close()
		t.Error("admin address still open after exit")
	}
}
