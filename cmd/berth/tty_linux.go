package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// hasControllingTTY reports whether f is a terminal that is berth's controlling terminal (docker run -it).
func hasControllingTTY(f *os.File) bool {
	if f == nil {
		return false
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return false
	}
	_, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil
}
