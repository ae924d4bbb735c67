#!/usr/bin/env bash
# Called by bench/run.sh (stdout is appended to bench/RESULTS.md). Each measurement prints its own markdown
# section. Append a line for yours below; never rewrite the others.
set -euo pipefail
cd "$(dirname "$0")/.."

bench/secrets.sh
bench/stream.sh
bench/consul.sh
bench/checks.sh
bench/ssmpath.sh
