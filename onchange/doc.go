// Package onchange owns the on_change setting of secret and peers blocks: what berth does to the main
// command (or, without one, to every job) when a refreshed secret or a followed peer list changes.
//
//	on_change = "none"          (default) take the new value into the next start only
//	on_change = "restart"       stop and start again
//	on_change = "signal:SIGHUP" send a signal (any name supervisor.ParseSignal accepts: HUP, SIGRTMIN+2, 10)
//
// The config package parses the text once (Parse); secrets and discovery carry the Action and hand it back
// to cmd/berth, which applies it.
package onchange
