// Package supervisor is berth's PID-1 core: the one owner of wait4, the processes berth starts, signals,
// the jobs graph, restarts, hooks and the shutdown sequence.
//
// Where things live:
//
//	supervisor.go     Config, New and the Supervisor; Events and Hook; berth's exit code (ExitCode: the first
//	                  decision wins, the main command's through the exit code map) and the errors that end
//	                  it (GaveUpError 70, JobFailedError)
//	reap_linux.go     Reaper: the single wait4 loop; Start registers a pid under the sweep's lock, so an exit
//	                  status is never lost to the orphan reaper (containerd's sys/reaper design)
//	process.go        Process: one process in its own group; Stop (stop signal, timeout, SIGKILL of the group;
//	                  a second Stop joins the one under way and keeps its deadline)
//	loop.go           Supervisor.Run: the loop that makes every decision and waits only on signals and its
//	                  mailbox; hooks, stops for restarts and timers run beside it and report back as events
//	jobs.go           JobSpec (its defaults and Validate), unit states, `after` readiness, restart back-off,
//	                  hooks
//	graph.go          ValidateGraph: the `after` lists of all jobs and the main command together
//	diff.go           Diff and PlanReload: what a reload restarts, adds and removes, and what it refuses
//	gate.go           Gate: holds a unit back until coordination lets it run (singleton lock, once-job),
//	                  acquired beside the loop; grants lost and released; GateError
//	shutdown.go       the shutdown sequence of the README (drain, drain_delay, pre_stop, stop signals in
//	                  reverse start order, leftovers, post_stop, output flush)
//	api.go            what other actors call: Status, Restart, SignalJob, UpdateJobs (reload), SetEnv,
//	                  PutEnv, Exec (hooks and exec checks run through the one reaper)
//	signals.go        the forwarded set, parsing of names, numbers and SIGRTMIN+n, rewrites, signal scope
//	pdeath_linux.go   the parent-death signal (PR_SET_PDEATHSIG) on a thread held for the run
//	exit.go           Exit, and the exit code map's parsing
//	inherit_linux*.go the entry point berth_rt0 that records the inherited signal mask and dispositions,
//	                  and the handlers that catch the forwarded signals (os/signal without the entry point)
//	shim_linux.go     ExecShim: berth re-executed in the child to pass on a signal berth was started with
//	                  ignored, which fork cannot hand down for the signals the runtime handles
//	user.go, rlimit.go  -user and rlimits
//	trim_linux.go     TrimExecutable: drops the start-up's pages of berth's executable from its resident set
//	*_other.go        the same names outside Linux, so the module builds there; NewReaper refuses
//
// Knobs (set by cmd/berth from flags, BERTH_* and the config file): Config.KillGrace (kill_grace, 3s),
// Config.DrainDelay (drain_delay, 0s), Config.DrainTimeout (10s), Config.SignalRewrite (signal_rewrite),
// Config.SignalScope (signal_scope: the main command's group, or the main command alone),
// Config.ParentDeathSignal (pdeathsig),
// Config.ExitCodeMap (exit_code_map: the main command's own exit code only),
// Spec.StopSignal and Spec.StopTimeout (stop_signal, stop_timeout: SIGTERM, 10s), JobSpec (job blocks).
//
// Package-level state: the signal state berth_rt0 records before the runtime starts, and a guard that makes a
// second Reaper in one process an error. Both are process-wide by nature (dispositions, wait4).
package supervisor
