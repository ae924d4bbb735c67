// Command interleave runs commands side by side for bench/run.sh: round after round, each command once per
// round (the order reversed every other round), so load from other work on the machine falls on all of them
// alike. For every run it records the wall time and the user and system CPU time from the child's rusage. The
// peak resident set and the page faults come from rounds of their own under /usr/bin/time (-rss-runs): a
// child of this Go process would inherit its 3.5 MB resident set as a floor of ru_maxrss (the kernel records
// the old image's peak at exec), while /usr/bin/time forks from a small image. It prints one JSON document
// with the per-command medians.
//
//	interleave -runs 300 -warmup 20 -rss-runs 20 -- 'CMD A' 'CMD B' ...
//
// A command is split on spaces (no quoting); stdout and stderr go to /dev/null, stdin is /dev/null.
package main
