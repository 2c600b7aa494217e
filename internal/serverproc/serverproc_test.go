//go:build linux

package serverproc

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sh starts script under /bin/sh in dir, as a server whose log is
// dir/log.
func sh(t *testing.T, dir, script string, opt Options) *Proc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	opt.Name = "sh"
	opt.Output = filepath.Join(dir, "out")
	opt.Logs = []string{filepath.Join(dir, "log"), filepath.Join(dir, "err.log")}
	if opt.StopTimeout == 0 {
		opt.StopTimeout = 10 * time.Second // a loaded machine is slow to run a trap
	}
	p, err := Start(cmd, opt)
	if err != nil {
		t.Fatal(err)
	}
	p.StopAtCleanup(t, "sh")
	return p
}

func contains(s string) func(string) (bool, error) {
	return func(log string) (bool, error) { return strings.Contains(log, s), nil }
}

// gone reports whether pid has exited (or is a zombie nobody reaped).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z")
}

// TestStopGroup: with Group, SIGTERM reaches the child the script started
// (as ejabberdctl starts erl); a second Stop returns nil.
func TestStopGroup(t *testing.T) {
	dir := t.TempDir()
	p := sh(t, dir, "sleep 1000 & echo $! > child; echo ready > log; wait", Options{Group: true})
	if err := p.WaitReady(10*time.Second, 10*time.Millisecond, contains("ready")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !gone(child); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the group outlived Stop", child)
		}
	}
}

// TestStopReports: Stop reports a process that ignored SIGTERM, one that
// exited with an error after it under CleanExit (not without), and one
// that had exited before.
func TestStopReports(t *testing.T) {
	for _, c := range []struct {
		name, script string
		clean        bool
		want         string // in Stop's error; "" for nil
	}{
		{"ignores TERM", `trap "" TERM; echo ready > log; while :; do sleep 0.01; done`, false, "ignored SIGTERM for 200ms"},
		{"exit 3 clean", `trap "exit 3" TERM; echo ready > log; while :; do sleep 0.01; done`, true, "did not shut down cleanly"},
		{"exit 3", `trap "exit 3" TERM; echo ready > log; while :; do sleep 0.01; done`, false, ""},
		{"exited before", `echo ready > log; exit 4`, false, "had exited before stop: exit status 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := Options{CleanExit: c.clean}
			if c.name == "ignores TERM" {
				opt.StopTimeout = 200 * time.Millisecond
			}
			p := sh(t, t.TempDir(), c.script, opt)
			if c.name == "exited before" {
				<-p.Done()
			} else if err := p.WaitReady(10*time.Second, 10*time.Millisecond, contains("ready")); err != nil {
				t.Fatal(err)
			}
			err := p.Stop()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("stop: %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("stop: %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestWaitReady: the readiness check's error, an exit and an address that
// does not accept each end the wait with an error that says so.
func TestWaitReady(t *testing.T) {
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	bad := errors.New("bad line")
	for _, c := range []struct {
		name, script string
		ready        func(string) (bool, error)
		addrs        []string
		is           error
		want         string
	}{
		{"ready", "echo ready > log; exec sleep 1000", contains("ready"), nil, nil, ""},
		{"check fails", "echo oops > log; exec sleep 1000", func(log string) (bool, error) {
			if strings.Contains(log, "oops") {
				return false, bad
			}
			return false, nil
		}, nil, bad, "bad line"},
		{"exits", "echo starting > log; exit 2", contains("ready"), nil, ErrExited, "sh exited before it was ready: exit status 2"},
		{"refused", "echo ready > log; exec sleep 1000", contains("ready"), []string{refused}, nil, "does not accept"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := sh(t, t.TempDir(), c.script, Options{})
			err := p.WaitReady(10*time.Second, 10*time.Millisecond, c.ready, c.addrs...)
			if c.want == "" {
				if err != nil {
					t.Fatalf("WaitReady: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("WaitReady: %v, want %q (is %v)", err, c.want, c.is)
			}
			_ = p.Stop()
		})
	}
}

// TestLog: the main log, then the other logs and the output under their
// names; a missing main log is said.
func TestLog(t *testing.T) {
	dir := t.TempDir()
	p := sh(t, dir, "echo from-stdout; echo from-err > err.log; echo ready > log; exec sleep 1000", Options{})
	if err := p.WaitReady(10*time.Second, 10*time.Millisecond, contains("ready")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Log(), "from-stdout"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks stdout:\n%s", p.Log())
		}
	}
	if got, want := p.Log(), "ready\n--- err.log ---\nfrom-err\n--- out ---\nfrom-stdout\n"; got != want {
		t.Errorf("Log() = %q, want %q", got, want)
	}
	os.Remove(filepath.Join(dir, "log"))
	if got := p.Log(); !strings.HasPrefix(got, "(no log: ") {
		t.Errorf("Log() without a log = %q", got)
	}
}

// TestRetry: only ErrAddrInUse is tried again, at most tries times.
func TestRetry(t *testing.T) {
	inUse := errors.New("port 1: " + ErrAddrInUse.Error())
	for _, c := range []struct {
		name      string
		tries     int
		errs      []error // start's results, in turn
		wantCalls int
		wantErr   bool
	}{
		{"first", 3, []error{nil}, 1, false},
		{"after races", 3, []error{ErrAddrInUse, ErrAddrInUse, nil}, 3, false},
		{"too many races", 2, []error{ErrAddrInUse, ErrAddrInUse, nil}, 2, true},
		{"other error", 3, []error{inUse, nil}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			got, err := Retry(t, c.tries, func(attempt int) (int, error) {
				if attempt != calls {
					t.Errorf("attempt %d on call %d", attempt, calls)
				}
				calls++
				return attempt, c.errs[attempt]
			})
			if calls != c.wantCalls || (err != nil) != c.wantErr || got != calls-1 {
				t.Errorf("Retry: %d calls, result %d, err %v; want %d calls, err %v", calls, got, err, c.wantCalls, c.wantErr)
			}
		})
	}
}
