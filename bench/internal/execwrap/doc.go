// Package execwrap is the whole of bench/gobaseline, and the main of bench/godeps and bench/godeps-required:
// start the arguments with os/exec, wait, exit with their code. It imports os and os/exec only, so the floor
// programs differ in nothing but the packages they blank-import.
package execwrap
