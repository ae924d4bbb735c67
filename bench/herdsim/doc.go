// Command herdsim simulates a start-up herd against a token-bucket quota, to choose berth's back-off for
// throttled fetches by numbers (bench/fleet.sh prints its table into bench/FLEET.md).
//
// N tasks each need one request; they all start within 0.2s. A request succeeds if the bucket (rate R a
// second, holding at most R) has a token, else the task waits by its back-off policy and asks again. The
// real herd (TestFleetHerd, moto behind a 40 TPS proxy) matched this model within a few percent for the
// policies it ran: p99 and requests per task.
package main
