// Package serverproc runs one real server process for a test harness
// (internal/prosodytest, internal/ejabberdtest): what every such harness
// does the same way, so that each keeps only its server's specifics
// (configuration, control commands, user registration, readiness lines).
//
// [Start] starts the process with its stdout and stderr in a file; a
// goroutine owned by the [Proc] waits for it and keeps its exit error.
// [Proc.WaitReady] polls the server's log until the harness's readiness
// check passes, then checks that the listening addresses accept; it gives
// up when the process exits or the time-out passes. [Proc.Stop] sends
// SIGTERM (to the whole process group with [Options.Group]) and SIGKILL
// after [Options.StopTimeout]. [Proc.StopAtCleanup] stops it when the
// test ends and prints [Proc.Log] when the test failed. [Retry] starts
// again when a start lost a race for a port ([ErrAddrInUse]): the ports
// come from internal/freeport, which cannot stop another process taking
// one before the server binds it. [Unavailable] skips a test whose server
// is not installed, or fails it when the environment variable CI is set.
//
// On Linux the kernel sends the process SIGTERM if the test binary dies
// without running its cleanups, so no server outlives its test.
package serverproc
