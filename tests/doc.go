// Package tests holds berth's end-to-end tests. Each builds the real berth binary (tests/harness) and drives
// it against real components started on loopback: `consul agent -dev` and nats-server from .tools/bin
// (`make tools`), moto_server for AWS (`make deps`), PID namespaces through unshare, podman containers, and
// tini and dumb-init as controls where a scenario is their contract too. TestFault* scenarios record their
// figures into bench/FAULTS.md through `make faults`; TestPeerSuite* are tini's and dumb-init's scenarios.
package tests
