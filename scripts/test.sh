#!/usr/bin/env bash
# Runs the whole dagrun test suite on a fresh Debian machine with Go:
# installs what the tests need (redis-server, node), then gofmt, go vet,
# go test -race over every package, short fuzz runs and the manifest checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Tests start their own redis-server processes on free loopback ports; a
# system service is not needed and must not hold the default port.

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
# One package at a time: the worker, spill and subproc tests start real
# processes (Redis, workers, node) whose timings suffer when they compete
# for the 2 cores with other packages.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -count=1 -p 1 -timeout 20m "$@" ./... 2>&1 | tee "$log"
passed=$(grep -c '^ok ' "$log" || true)

echo "== fuzz (short)"
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-10s}" "$1" >/dev/null; echo "ok  fuzz $2"; }
fuzz ./dag FuzzParse
for f in $(grep -ho '^func Fuzz[A-Za-z0-9]*' parsers/*_test.go | sed 's/func //'); do fuzz ./parsers "$f"; done
for f in $(grep -ho '^func Fuzz[A-Za-z0-9]*' spill/*_test.go | sed 's/func //'); do fuzz ./spill "$f"; done

if [ -x deploy/validate.sh ]; then
  echo "== deploy manifests"
  deploy/validate.sh
fi
echo "all checks passed"
echo "packages: $passed passed, 0 failed"
