package serverproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options describe one server process.
type Options struct {
	// Name names the server in errors: "prosody", "ejabberd".
	Name string
	// Output is the file that receives the process's stdout and stderr.
	Output string
	// Logs are the server's own log files, the main one first: WaitReady
	// polls Logs[0], and Log returns them all (and Output).
	Logs []string
	// Group runs the process in its own process group, and Stop signals
	// the whole group: for a control script that runs the server as its
	// child (ejabberdctl runs erl), which a signal to the script alone
	// would leave running.
	Group bool
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// CleanExit makes Stop report a non-zero exit after SIGTERM as an
	// error: for a server that handles SIGTERM and exits with status 0.
	CleanExit bool
}

// ErrAddrInUse marks a start that failed because a listening port was
// taken: the one failure [Retry] tries again, with other ports.
var ErrAddrInUse = errors.New("a listening port is in use")

// ErrExited marks a WaitReady that ended because the process exited.
var ErrExited = errors.New("exited before it was ready")

// Proc is a started server process.
type Proc struct {
	opt  Options
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu      sync.Mutex // guards the following fields
	waitErr error      // the process's exit error, once done is closed
	stopped bool       // Stop was called
}

// Start starts cmd with its stdout and stderr in opt.Output. On Linux it
// sets cmd.SysProcAttr.Pdeathsig (and Setpgid with opt.Group), keeping
// whatever else the caller set there (a Credential).
func Start(cmd *exec.Cmd, opt Options) (*Proc, error) {
	out, err := os.Create(opt.Output)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", opt.Name, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	setSysProcAttr(cmd, opt.Group)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", opt.Name, err)
	}
	p := &Proc{opt: opt, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Process is the started process.
func (p *Proc) Process() *os.Process { return p.cmd.Process }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitErr is the process's exit error: nil while it runs or when it
// exited with status 0.
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// WaitReady polls the main log (Logs[0]) every interval until ready(log)
// returns true, then dials each of addrs. It fails when ready returns an
// error, when the process exits (wrapping [ErrExited]), when an address
// does not accept, or when timeout has passed.
func (p *Proc) WaitReady(timeout, interval time.Duration, ready func(log string) (bool, error), addrs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		log, _ := os.ReadFile(p.opt.Logs[0])
		ok, err := ready(string(log))
		if err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s %w: %v", p.opt.Name, ErrExited, p.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (its log %s lacks the lines that say so)", p.opt.Name, timeout, p.opt.Logs[0])
		case <-time.After(interval):
		}
	}
	for _, addr := range addrs {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%s logged it is ready but %s does not accept: %w", p.opt.Name, addr, err)
		}
		c.Close()
	}
	return nil
}

// Stop terminates the process (SIGTERM, then SIGKILL after StopTimeout;
// to the whole group with Options.Group) and waits for it. It reports a
// process that had exited before, one that had to be killed and, with
// Options.CleanExit, one that exited with an error. It may be called more
// than once: later calls wait for the exit and return nil.
func (p *Proc) Stop() error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if already {
		<-p.done
		return nil
	}
	select {
	case <-p.done:
		if p.opt.Group {
			_ = signal(p.cmd.Process, true, syscall.SIGKILL) // whatever is left of the group
		}
		return fmt.Errorf("%s had exited before stop: %v", p.opt.Name, p.ExitErr())
	default:
	}
	_ = signal(p.cmd.Process, p.opt.Group, syscall.SIGTERM)
	select {
	case <-p.done:
		if err := p.ExitErr(); err != nil && p.opt.CleanExit {
			return fmt.Errorf("%s did not shut down cleanly: %w", p.opt.Name, err)
		}
		return nil
	case <-time.After(p.opt.StopTimeout):
	}
	_ = signal(p.cmd.Process, p.opt.Group, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s ignored SIGTERM for %v, killed", p.opt.Name, p.opt.StopTimeout)
}

// StopAtCleanup has t.Cleanup stop the process, report a failed Stop as a
// test error and, when the test failed, print Log. who names the server
// in those lines ("prosodytest: a.test").
func (p *Proc) StopAtCleanup(t testing.TB, who string) {
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("%s: %v", who, err)
		}
		if t.Failed() {
			t.Logf("%s: log (%s):\n%s", who, p.opt.Logs[0], p.Log())
		}
	})
}

// Log returns the main log, then each other log file and Output that is
// not empty, each under a "--- name ---" line.
func (p *Proc) Log() string {
	var b strings.Builder
	if data, err := os.ReadFile(p.opt.Logs[0]); err == nil {
		b.Write(data)
	} else {
		fmt.Fprintf(&b, "(no log: %v)\n", err)
	}
	others := append(append([]string(nil), p.opt.Logs[1:]...), p.opt.Output)
	for _, name := range others {
		if data, err := os.ReadFile(name); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s ---\n", filepath.Base(name))
			b.Write(data)
		}
	}
	return b.String()
}

// Retry calls start (attempt 0, 1, …) until it succeeds, fails with an
// error that is not [ErrAddrInUse], or has been called tries times, and
// returns its last result. The ports a harness picks were free a moment
// ago; another process may have taken one since, and only that is worth
// another try.
func Retry[S any](t testing.TB, tries int, start func(attempt int) (S, error)) (S, error) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		s, err := start(attempt)
		if err == nil || !errors.Is(err, ErrAddrInUse) || attempt+1 >= tries {
			return s, err
		}
		t.Logf("%v; retrying with other ports", err)
	}
}

// Unavailable skips the test because its server cannot run here (msg says
// why and how to fix it), or fails it when the environment variable CI is
// set: CI must run the real-server tests. who prefixes the failure
// ("prosodytest").
func Unavailable(t testing.TB, who, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(who + ": " + msg + " [CI is set, so this is a failure]")
	}
	t.Skip(msg)
}
