package main

import (
	"github.com/berth-dev/berth/bench/internal/execwrap"
)

func main() { execwrap.Main() }
