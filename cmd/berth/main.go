package main

import (
	"os"
)

// Set at build time: go build -ldflags "-X main.version=v0.1.0 -X main.commit=abc1234".
var (
	version = "v0.0.0-dev"
	commit  = "unknown"
)

func main() {
	os.Exit(Main(os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.LookupEnv))
}
