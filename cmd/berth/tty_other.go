//go:build !linux

package main

import "os"

// hasControllingTTY is false outside Linux, where berth does not supervise processes.
func hasControllingTTY(*os.File) bool { return false }
