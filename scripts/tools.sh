#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need into the tool cache
# ($FLINK_AGENT_CACHE, default ~/.cache/flink-agent), never into the repo.
# Every step is idempotent and cached: a second run does nothing.
#
#   scripts/tools.sh            everything the tests need
#   scripts/tools.sh loki flink one or more steps
#   scripts/tools.sh promtail   the bench-compare peer (not part of "all")
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FLINK_AGENT_CACHE:-$HOME/.cache/flink-agent}
BIN=$CACHE/bin
LOKI_VERSION=${LOKI_VERSION:-v3.5.7}
STATSD_EXPORTER_VERSION=${STATSD_EXPORTER_VERSION:-v0.31.0}
HELM_VERSION=${HELM_VERSION:-v3.19.5}
FLINK_VERSION=${FLINK_VERSION:-1.20.0}
MVN=(mvn -B -q --no-transfer-progress)

mkdir -p "$BIN"
log() { printf '[tools] %s\n' "$*" >&2; }

# stamped NAME VERSION: true when $BIN/NAME was built from VERSION already.
stamped() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" >"$BIN/.$1.version"; }

go_tool() { # go_tool NAME MODULE/PATH VERSION
	local name=$1 pkg=$2 version=$3
	stamped "$name" "$version" && return 0
	log "go install $pkg@$version"
	GOBIN=$BIN CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$pkg@$version"
	stamp "$name" "$version"
}

# Loki's module cannot be built with `go install`: its go.mod replaces
# pkg/push with a directory the module zip does not hold. Copy it out of the
# module cache, drop that replace, and build with -mod=mod.
loki_src() {
	local src=$CACHE/src/loki-$LOKI_VERSION
	if [ ! -f "$src/.ready" ]; then
		local dir
		dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/grafana/loki/v3@$LOKI_VERSION" |
			sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		[ -n "$dir" ] || { log "go mod download of loki $LOKI_VERSION failed"; exit 1; }
		rm -rf "$src" && mkdir -p "$(dirname "$src")"
		cp -r "$dir" "$src" && chmod -R u+w "$src"
		(cd "$src" && go mod edit -dropreplace github.com/grafana/loki/pkg/push)
		touch "$src/.ready"
	fi
	echo "$src"
}

loki_build() { # loki_build NAME PACKAGE
	stamped "$1" "$LOKI_VERSION" && return 0
	local src
	src=$(loki_src)
	log "building $1 $LOKI_VERSION (several minutes the first time)"
	(cd "$src" && CGO_ENABLED=0 go build -mod=mod -o "$BIN/$1.tmp" "$2")
	mv "$BIN/$1.tmp" "$BIN/$1"
	stamp "$1" "$LOKI_VERSION"
}

step_loki() { loki_build loki ./cmd/loki; }
step_promtail() { loki_build promtail ./clients/cmd/promtail; }
step_statsd() { go_tool statsd_exporter github.com/prometheus/statsd_exporter "$STATSD_EXPORTER_VERSION"; }
step_helm() { go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"; }

# promtool and amtool come from Debian's packages. policy-rc.d keeps dpkg from
# starting the Prometheus and Alertmanager daemons that the packages ship.
step_promtools() {
	if command -v promtool >/dev/null && command -v amtool >/dev/null; then return 0; fi
	local sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	log "apt-get install prometheus prometheus-alertmanager (for promtool, amtool)"
	local policy=/usr/sbin/policy-rc.d own_policy=0
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee $policy >/dev/null
		"${sudo[@]}" chmod +x $policy
		own_policy=1
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
		prometheus prometheus-alertmanager >/dev/null
	[ $own_policy = 1 ] && "${sudo[@]}" rm -f $policy
	# The packages' daemons are not wanted on a test machine.
	"${sudo[@]}" pkill -x prometheus 2>/dev/null || true
	"${sudo[@]}" pkill -x prometheus-alertmanager 2>/dev/null || true
	command -v promtool >/dev/null && command -v amtool >/dev/null
}

# A runnable Flink: lib/ with the runtime and its dependencies, and the
# flink-s3-fs-presto plugin under plugins/ where Flink's PluginManager looks.
step_flink() {
	local dir=$CACHE/flink-$FLINK_VERSION
	[ -f "$dir/.complete" ] && return 0
	log "resolving Flink $FLINK_VERSION from Maven Central"
	rm -rf "$dir"
	"${MVN[@]}" -f "$ROOT/testbed/flinkdist/pom.xml" -Dflink.version="$FLINK_VERSION" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$dir/lib"
	"${MVN[@]}" -f "$ROOT/testbed/flinkdist/pom.xml" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
		-Dartifact="org.apache.flink:flink-s3-fs-presto:$FLINK_VERSION" \
		-DoutputDirectory="$dir/plugins/s3-fs-presto"
	touch "$dir/.complete"
}

# The test bed's checkpointing job, rebuilt when its sources change.
step_job() {
	local out=$CACHE/flinkjob-$FLINK_VERSION.jar hash
	hash=$(cd "$ROOT/testbed/flinkjob" && find pom.xml src -type f | sort | xargs sha256sum | sha256sum | cut -c1-16)
	[ -f "$out" ] && [ "$(cat "$out.sha" 2>/dev/null)" = "$hash" ] && return 0
	log "building the test bed job for Flink $FLINK_VERSION"
	"${MVN[@]}" -f "$ROOT/testbed/flinkjob/pom.xml" -Dflink.version="$FLINK_VERSION" package -DskipTests
	cp "$ROOT/testbed/flinkjob/target/flinkjob.jar" "$out.tmp" && mv "$out.tmp" "$out"
	echo "$hash" >"$out.sha"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(statsd helm promtools flink job loki)
# One lock per step: two test runs at once (or a test run beside `make demo`)
# wait for each other's build instead of writing the same files.
for s in "${steps[@]}"; do
	exec {lock}>"$CACHE/.lock-$s"
	flock "$lock"
	"step_$s"
	exec {lock}>&-
done
log "tools ready in $CACHE"
