package gateway

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// TestNewClosesOnFailure makes New's last step fail (its S2S or admin
// listen address is taken) after it opened the spool and the link's
// listener or UDP socket, and checks that it leaves no file descriptor
// open.
func TestNewClosesOnFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name, transport, busyKey string
	}{
		{"tcp/s2s", "tcp", "s2s"},
		{"tcp/admin", "tcp", "admin"},
		{"quic/s2s", "quic", "s2s"},
		{"quic/admin", "quic", "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, opts := spooledConfig(t, tc.transport)
			want := "gateway: " + tc.busyKey + " listen"
			if tc.busyKey == "s2s" {
				cfg.S2S.Listen = busy.Addr().String()
			} else {
				cfg.AdminListen = busy.Addr().String()
			}
			before := openFDs(t)
			g, err := New(cfg, opts)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("New = %v, %v; want an error %q", g, err, want)
			}
			if _, err := os.Stat(filepath.Join(cfg.StateDir, "spool", "spool.log")); err != nil {
				t.Fatalf("New failed before it opened the spool: %v", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.StateDir, "learn", "in")); err != nil {
				t.Fatalf("New failed before it opened the learner: %v", err)
			}
			after := openFDs(t)
			for fd, target := range after {
				if before[fd] != target {
					t.Errorf("New left fd %s open: %s", fd, target)
				}
			}
		})
	}
}

// spooledConfig is gateway a's configuration with a disk spool, its link
// listening on a loopback port over transport, and the Options with its key.
func spooledConfig(t *testing.T, transport string) (*config.Config, Options) {
	t.Helper()
	pc, err := NewPairConfig(map[string]string{"a.test": "127.0.0.1:1"}, map[string]string{"b.test": "127.0.0.1:1"}, "a-secret-of-16-chars")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pc.A
	cfg.StateDir = t.TempDir()
	cfg.Link.SpoolSync = "batch"
	cfg.Link.LearnDictBytes = config.Default().Link.LearnDictBytes // its goroutine and files too
	cfg.Link.Transport = transport
	cfg.Link.Listen = "127.0.0.1:0"
	return cfg, Options{PrivateKey: pc.KeyA, Logger: slog.New(slog.DiscardHandler)}
}

// openFDs maps this process's open file descriptors to what they are.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fds := map[string]string{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}

// TestRunClosesAll: a gateway that ran leaves no file descriptor open (its
// spool, the link's listener or UDP socket, the S2S listener).
func TestRunClosesAll(t *testing.T) {
	for _, transport := range []string{"tcp", "quic"} {
		t.Run(transport, func(t *testing.T) {
			cfg, opts := spooledConfig(t, transport)
			before := openFDs(t)
			g, err := New(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := g.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for fd, target := range openFDs(t) {
				if before[fd] != target {
					t.Errorf("Run left fd %s open: %s", fd, target)
				}
			}
		})
	}
}
