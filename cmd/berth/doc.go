// Command berth is a PID-1 entrypoint supervisor and sidecar agent for containers. See README.md and
// config/doc.go; everything here only assembles the packages and wires their actors.
package main
