//go:build !linux

package serverproc

import (
	"os"
	"os/exec"
	"syscall"
)

// setSysProcAttr does nothing here: the servers these tests start are
// Debian packages, run on Linux; elsewhere the package only has to build.
func setSysProcAttr(cmd *exec.Cmd, group bool) {}

// signal sends sig to the process (not to a group: see setSysProcAttr).
func signal(p *os.Process, group bool, sig syscall.Signal) error {
	return p.Signal(sig)
}
