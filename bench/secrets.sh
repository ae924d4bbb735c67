#!/usr/bin/env bash
# Secrets resolution time (issue 4): `berth run -config c.hcl -- true` resolving 50 env references over 5
# Secrets Manager secrets against a real moto_server, with the default worker pool (8) and with
# `secrets { concurrency = 1 }`, directly and through a proxy adding 20 ms per request. The measurement is
# TestSecretsBench in tests/secrets_test.go (skipped unless BERTH_BENCH=1); it prints a markdown table here.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
BERTH_BENCH=1 BERTH_BENCH_OUT="$out" go test -count=1 -run '^TestSecretsBench$' ./tests >&2
cat "$out"
