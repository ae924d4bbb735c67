#!/usr/bin/env bash
# Secrets on the critical path (issue 15): `ssm_path` of 5 and 50 parameters against chamber doing the same
# GetParametersByPath, interleaved, against a real moto_server (TestSSMPathBench in tests/ssmpath_bench_test.go,
# skipped unless BERTH_BENCH=1); prints a markdown table. chamber is $CHAMBER, else .tools/bin/chamber, else
# built into .tools/bin from a checkout of github.com/segmentio/chamber at $CHAMBER_SRC (the Go module proxy
# does not serve github.com/segmentio/chamber/v3; its dependencies it does). Without one the section says so.
set -euo pipefail
cd "$(dirname "$0")/.."
CHAMBER=${CHAMBER:-$PWD/.tools/bin/chamber}
if [[ ! -x $CHAMBER && -n ${CHAMBER_SRC:-} ]]; then
  mkdir -p .tools/bin
  (cd "$CHAMBER_SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OLDPWD/.tools/bin/chamber" .) >&2
  echo "segmentio/chamber $(git -C "$CHAMBER_SRC" rev-parse --short HEAD 2>/dev/null || echo '(unknown commit)'), $(go version | cut -d' ' -f3)" > .tools/bin/chamber.version
  CHAMBER=$PWD/.tools/bin/chamber
fi
if [[ ! -x $CHAMBER ]]; then
  printf '## Secrets on the critical path: `ssm_path` vs chamber\n\nNot measured: no chamber binary (set CHAMBER, or CHAMBER_SRC to a checkout of segmentio/chamber).\n\n'
  exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
BERTH_BENCH=1 BERTH_BENCH_OUT="$out" CHAMBER="$CHAMBER" BERTH_BIN="$PWD/bin/berth" \
  go test -count=1 -run '^TestSSMPathBench$' ./tests >&2
cat "$out"
echo "chamber: $(cat "$CHAMBER.version" 2>/dev/null || "$CHAMBER" version 2>/dev/null | head -1), built from its source with the Go module proxy for its dependencies."
echo
