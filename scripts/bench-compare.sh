#!/usr/bin/env bash
# The log shipper against Promtail: the same Flink log file (400,000 events,
# 5% with stack traces), the same counting receiver, one after the other.
# Reports wall time, lines per CPU-second and peak RSS of both.
# Promtail comes from `scripts/tools.sh promtail` (`make bench-compare`
# installs it); EVENTS overrides the file size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FLINK_AGENT_CACHE:-$HOME/.cache/flink-agent}
PROMTAIL=$CACHE/bin/promtail
[ -x "$PROMTAIL" ] || { echo "promtail is not installed in $CACHE/bin: run scripts/tools.sh promtail" >&2; exit 1; }
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cd "$ROOT"
CGO_ENABLED=0 go build -o "$BIN/shipperd" ./shipper/internal/cmd/shipperd
go run ./shipper/internal/cmd/benchcompare --shipperd "$BIN/shipperd" --promtail "$PROMTAIL" --events "${EVENTS:-400000}"
