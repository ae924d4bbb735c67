// Command testapp is the application the e2e tests run under berth. It does one observable thing per flag,
// so a test can assert on what the child saw: which signals, which uid, which environment, which rlimits.
package main
