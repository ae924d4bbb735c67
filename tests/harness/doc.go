// Package harness starts the real components berth's tests run against — a `consul agent -dev`, a
// `moto_server`, `nats-server`, the built berth binary, a PID namespace — on free loopback ports, and stops
// each of them in t.Cleanup. Nothing here fakes an API: a test that needs Consul gets a Consul.
//
// Binaries come from the repository's git-ignored .tools/bin (built by `make tools` from tools/go.mod);
// moto_server from PATH (`make deps`). A missing component fails the test with the command that installs
// it: these tests must run in CI, not be skipped.
package harness
