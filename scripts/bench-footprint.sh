#!/usr/bin/env bash
# What each log shipper costs at a steady 2,000 events/s (issue 14): the
# agent as TaskManager and JobManager sidecar, the OpenTelemetry Collector's
# filelog receiver and Promtail, on the same file and the same receiver at
# the same time. Prints CPU share, RSS, received counts, push latency and
# the log → checkpoint-metric latency.
#
#   BASE=<git ref>   also runs the agent built from that commit (before/after)
#   PROFILE=<dir>    CPU and allocation profiles of the TaskManager sidecar
#   SMAPS=<dir>      each process's /proc/<pid>/smaps at the end of the load
#   RATE, LOAD, IDLE, LATENCY  override the defaults (2000, 45s, 10s, 15s)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FLINK_AGENT_CACHE:-$HOME/.cache/flink-agent}
for t in otelcol-filelog promtail; do
	[ -x "$CACHE/bin/$t" ] || { echo "$t is not installed in $CACHE/bin: run scripts/tools.sh otelcol_filelog promtail" >&2; exit 1; }
done
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cd "$ROOT"
CGO_ENABLED=0 go build -trimpath -o "$BIN/flink-agent" ./cmd/flink-agent
args=()
if [ -n "${BASE:-}" ]; then
	mkdir "$BIN/base"
	git archive "$BASE" | tar -x -C "$BIN/base"
	(cd "$BIN/base" && CGO_ENABLED=0 go build -trimpath -o "$BIN/flink-agent-base" ./cmd/flink-agent)
	args+=(--baseline "$BIN/flink-agent-base")
fi
[ -z "${PROFILE:-}" ] || args+=(--profile "$PROFILE")
[ -z "${SMAPS:-}" ] || args+=(--smaps "$SMAPS")
go build -o "$BIN/benchfootprint" ./shipper/internal/cmd/benchfootprint
"$BIN/benchfootprint" --agent "$BIN/flink-agent" --otelcol "$CACHE/bin/otelcol-filelog" --promtail "$CACHE/bin/promtail" \
	--rate "${RATE:-2000}" --load "${LOAD:-45s}" --idle "${IDLE:-10s}" --latency "${LATENCY:-15s}" "${args[@]}"
