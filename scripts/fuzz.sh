#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 30s).
# The seed corpora already run as ordinary tests in `make test`; this is the
# coverage-guided search, for before a release or after touching a parser.
set -euo pipefail
t=${1:-30s}
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
    echo "== $dir $target ($t)"
    go test "$dir" -run='^$' -fuzz="^${target}\$" -fuzztime="$t"
  done
done
