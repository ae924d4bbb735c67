#!/usr/bin/env bash
# What a failing check run costs (issue 15): until a check has passed, berth runs it again 100 ms after each
# failed run, for up to 5 minutes. BenchmarkProbeFailing (discovery) runs berth's own probe code N times
# (default 300) against a refused port, counting CPU with getrusage (berth's and its exec children's).
# Prints a markdown section on stdout (bench/go-benchmarks.sh appends it to bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
out=$(go test ./discovery -run '^$' -bench 'BenchmarkProbeFailing' -benchtime "${N}x" -count 1)
echo "## A failing check run: CPU per run, and at the start step"
echo
echo "BenchmarkProbeFailing, $N runs each, against a port nothing listens on; exec checks through /bin/sh, as \`-check-exec\` runs them. The start step is 100 ms after a failed run, for an exec check at least 20× its run time."
echo
echo "| check | CPU per run µs | wall per run µs | % of a core at 10 runs a second | start step ms | % of a core at the start step |"
echo "|---|---|---|---|---|---|"
awk '/^BenchmarkProbeFailing\// {
  name = $1; sub(/^BenchmarkProbeFailing\//, "", name); sub(/-[0-9]+$/, "", name); gsub(/_/, " ", name)
  wall = $3 / 1000; cpu = $5
  step = 100000; if (name ~ /^exec/ && 20 * wall > step) step = 20 * wall
  printf "| %s | %.1f | %.1f | %.2f %% | %.0f | %.2f %% |\n", name, cpu, wall, cpu * 10 / 1e6 * 100, step / 1000, cpu / (step + wall) * 100
}' <<<"$out"
echo
