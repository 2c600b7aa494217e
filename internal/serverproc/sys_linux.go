package serverproc

import (
	"os"
	"os/exec"
	"syscall"
)

// setSysProcAttr makes the kernel send the process SIGTERM if the test
// binary dies without running its cleanups and, with group, puts it in a
// process group of its own.
func setSysProcAttr(cmd *exec.Cmd, group bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if group {
		cmd.SysProcAttr.Setpgid = true
	}
}

// signal sends sig to the process or, with group, to its process group.
func signal(p *os.Process, group bool, sig syscall.Signal) error {
	if group {
		return syscall.Kill(-p.Pid, sig)
	}
	return p.Signal(sig)
}
