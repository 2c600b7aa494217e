package prosodytest

import "syscall"

// sysProcAttr makes the kernel send Prosody SIGTERM if the test binary dies
// without running its cleanups, so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
