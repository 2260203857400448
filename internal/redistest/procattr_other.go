//go:build !linux

package redistest

import "syscall"

// sysProcAttr has nothing to add where parent-death signals do not exist;
// t.Cleanup still kills the servers on a normal exit.
func sysProcAttr() *syscall.SysProcAttr { return nil }
