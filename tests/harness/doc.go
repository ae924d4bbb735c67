// Package harness starts the real components berth's tests run against — a `consul agent -dev`, a
// `moto_server`, `nats-server`, the built berth binary, a PID namespace — on free loopback ports, and stops
// each of them in t.Cleanup. Nothing here fakes an API: a test that needs Consul gets a Consul.
//
// Binaries come from the repository's git-ignored .tools/bin (built by `make tools` from tools/go.mod);
// moto_server from PATH (`make deps`). A missing component fails the test with the command that installs
// it: these tests must run in CI, not be skipped.
//
// Tests wait on conditions, never on sleeps: Eventually, Within and WithinEvery (for a condition that costs
// a process or a counted query to check), WaitFile, WaitHTTP. For Consul, ConsulProxy.Waiting says that
// berth's blocking queries on a path wait on the index the agent is at now: berth has handled every earlier
// answer. That is the condition before a test changes what berth watches or counts a steady state.
package harness
