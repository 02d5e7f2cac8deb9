#!/bin/sh
# Validates the manifests in deploy/: every YAML document decodes, has the
# fields its kind needs, and agrees with the others (selectors, ports, the
# queue's pending list, GOMEMLIMIT under the memory limit, grace period over
# the drain); every metric the dashboard and the KEDA queries use exists in
# the worker's registry and is documented in ops/METRICS.md.
#
# Needs only Go (the yaml module comes from the Go module proxy); runs in a
# few seconds. No cluster, no network schema download.
set -eu
cd "$(dirname "$0")/.."
exec go test -count=1 ./deploy/ "$@"
