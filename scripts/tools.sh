#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need into the tool cache
# ($FLINK_AGENT_CACHE, default ~/.cache/flink-agent), never into the repo.
# Every step is idempotent and cached: a second run does nothing.
#
#   scripts/tools.sh            everything the tests need
#   scripts/tools.sh loki flink one or more steps
#   scripts/tools.sh promtail   the bench-compare peer (not part of "all")
#   scripts/tools.sh otelcol_filelog  the bench-footprint peer (not part of "all")
#
# The flink and job steps run once per Flink version: FLINK_VERSION (the
# test bed's default) and FLINK_VERSIONS ("test": also `make test`'s
# compatibility versions, the default; "all": every version in
# testbed/flink-versions.txt, for `make test-compat`; or a list).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FLINK_AGENT_CACHE:-$HOME/.cache/flink-agent}
BIN=$CACHE/bin
LOKI_VERSION=${LOKI_VERSION:-v3.5.7}
STATSD_EXPORTER_VERSION=${STATSD_EXPORTER_VERSION:-v0.31.0}
HELM_VERSION=${HELM_VERSION:-v3.19.5}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
VERSIONS_FILE=$ROOT/testbed/flink-versions.txt
# flink_versions ROLE: the versions of testbed/flink-versions.txt with that
# role (default, test), or all of them.
flink_versions() {
	awk -v role="$1" '!/^#/ && NF { if (role == "all" || $2 == role) print $1 }' "$VERSIONS_FILE"
}
FLINK_VERSION=${FLINK_VERSION:-$(flink_versions default)}
FLINK_VERSIONS=${FLINK_VERSIONS:-test}
MVN=(mvn -B -q --no-transfer-progress -Dstyle.color=never)
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-v0.35.0}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.21.2}
# The FlinkDeployment CRD from the operator's API jar: a current one (>= 1.9.0,
# with container-level restartPolicy) and one from before native sidecars.
FLINK_OPERATOR_VERSIONS=${FLINK_OPERATOR_VERSIONS:-1.10.0 1.7.0}
# Flink's native-Kubernetes deployer: the newest 1.20 patch the Maven mirror
# serves (the tests run it on the test bed's Flink 1.20 lib/).
FLINK_KUBERNETES_VERSION=${FLINK_KUBERNETES_VERSION:-1.20.1}

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
# make lint's linter, built from its Go module (pinned: a new version brings
# new findings, which should come with a change of this line).
step_golangci() { go_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"; }

# The OpenTelemetry Collector with its filelog receiver, for make
# bench-footprint: built by the collector builder from Go modules (about 3
# minutes). Its own name and directory; another distribution (the OTLP
# receiver of the traces tests) is built beside it.
OTELCOL_BUILDER_VERSION=${OTELCOL_BUILDER_VERSION:-v0.165.0}
FILELOG_RECEIVER_VERSION=${FILELOG_RECEIVER_VERSION:-v0.165.1}
step_otelcol_filelog() {
	local version=$OTELCOL_BUILDER_VERSION+filelog-$FILELOG_RECEIVER_VERSION
	stamped otelcol-filelog "$version" && return 0
	go_tool builder go.opentelemetry.io/collector/cmd/builder "$OTELCOL_BUILDER_VERSION"
	local dir=$CACHE/build/otelcol-filelog
	rm -rf "$dir" && mkdir -p "$dir"
	cat >"$dir/manifest.yaml" <<-EOF
		dist:
		  name: otelcol-filelog
		  description: OpenTelemetry Collector with the filelog receiver (flink-agent bench-footprint)
		  output_path: $dir/out
		receivers:
		  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver $FILELOG_RECEIVER_VERSION
		processors:
		  - gomod: go.opentelemetry.io/collector/processor/batchprocessor $OTELCOL_BUILDER_VERSION
		exporters:
		  - gomod: go.opentelemetry.io/collector/exporter/otlphttpexporter $OTELCOL_BUILDER_VERSION
		providers:
		  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider v1.71.0
		  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v1.71.0
	EOF
	log "building otelcol-filelog (collector builder $OTELCOL_BUILDER_VERSION, filelogreceiver $FILELOG_RECEIVER_VERSION; about 3 minutes)"
	(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod "$BIN/builder" --config manifest.yaml)
	mv "$dir/out/otelcol-filelog" "$BIN/otelcol-filelog"
	stamp otelcol-filelog "$version"
}

# The OpenTelemetry Collector that receives the agent's checkpoint traces in
# the tests: the OTLP receiver (gRPC and HTTP) and the file exporter, whose
# JSON lines the tests read back. Built beside otelcol-filelog, under its own
# name (about 3 minutes).
FILE_EXPORTER_VERSION=${FILE_EXPORTER_VERSION:-v0.165.0}
step_otelcol() {
	local version=$OTELCOL_BUILDER_VERSION+file-$FILE_EXPORTER_VERSION
	stamped otelcol-otlp "$version" && return 0
	go_tool builder go.opentelemetry.io/collector/cmd/builder "$OTELCOL_BUILDER_VERSION"
	local dir=$CACHE/build/otelcol-otlp
	rm -rf "$dir" && mkdir -p "$dir"
	cat >"$dir/manifest.yaml" <<-EOF
		dist:
		  name: otelcol-otlp
		  description: OpenTelemetry Collector with the OTLP receiver and the file exporter (flink-agent traces tests)
		  output_path: $dir/out
		receivers:
		  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $OTELCOL_BUILDER_VERSION
		exporters:
		  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter $FILE_EXPORTER_VERSION
		  - gomod: go.opentelemetry.io/collector/exporter/debugexporter $OTELCOL_BUILDER_VERSION
		providers:
		  - gomod: go.opentelemetry.io/collector/confmap/provider/fileprovider v1.71.0
		  - gomod: go.opentelemetry.io/collector/confmap/provider/envprovider v1.71.0
	EOF
	log "building otelcol-otlp (collector builder $OTELCOL_BUILDER_VERSION, otlpreceiver, fileexporter $FILE_EXPORTER_VERSION; about 4 minutes)"
	# The builder's own `go mod tidy` fails: the file exporter's tests import
	# an encoding extension the module proxy does not serve. So the builder
	# only writes the sources; go.mod requires the manifest's modules and
	# `tidy -e` resolves everything the binary needs, past that test import.
	(cd "$dir" && "$BIN/builder" --config manifest.yaml --skip-get-modules --skip-compilation)
	local requires=(-require=go.opentelemetry.io/collector/otelcol@"$OTELCOL_BUILDER_VERSION")
	requires+=($(awk '$2 == "gomod:" { print "-require=" $3 "@" $4 }' "$dir/manifest.yaml"))
	(cd "$dir/out" && go mod init otelcol-otlp >/dev/null 2>&1 && go mod edit "${requires[@]}" &&
		{ GOFLAGS=-mod=mod go mod tidy -e -compat=1.25 >/dev/null 2>&1 || true; })
	(cd "$dir/out" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$BIN/otelcol-otlp.tmp" .)
	mv "$BIN/otelcol-otlp.tmp" "$BIN/otelcol-otlp"
	stamp otelcol-otlp "$version"
}

# Prometheus, promtool, Alertmanager and amtool are built from their Go
# modules: newer than Debian's packages (Prometheus 3.x, not 2.42), no root,
# no daemon installed, nothing running that a test did not start. The test
# bed scrapes static targets only, so Prometheus's service-discovery plugins
# are left out (remove_all_sd). Prometheus's module versions are v0.3MM.P for
# release 3.MM.P.
prom_ldflags() { # prom_ldflags VERSION
	local p=github.com/prometheus/common/version
	echo "-s -w -X $p.Version=$1 -X $p.Revision=$1 -X $p.Branch=release -X $p.BuildUser=flink-agent-tools.sh"
}

step_prometheus() {
	stamped prometheus "$PROMETHEUS_VERSION" && stamped promtool "$PROMETHEUS_VERSION" && return 0
	local mm patch
	IFS=. read -r _ mm patch <<<"${PROMETHEUS_VERSION#v}"
	log "go install prometheus, promtool $PROMETHEUS_VERSION (Prometheus 3.$((10#$mm - 300)).$patch; a few minutes the first time)"
	GOBIN=$BIN CGO_ENABLED=0 GOFLAGS=-mod=mod go install -tags remove_all_sd \
		-ldflags "$(prom_ldflags "3.$((10#$mm - 300)).$patch")" \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
	stamp prometheus "$PROMETHEUS_VERSION"
	stamp promtool "$PROMETHEUS_VERSION"
}

# Alertmanager embeds its web UI from ui/app/dist, which is built with npm and
# not in the module zip: copy the module out of the module cache, put a page
# there that points at the API and amtool, and build with -mod=mod.
step_alertmanager() {
	stamped alertmanager "$ALERTMANAGER_VERSION" && stamped amtool "$ALERTMANAGER_VERSION" && return 0
	local src=$CACHE/src/alertmanager-$ALERTMANAGER_VERSION dir
	if [ ! -f "$src/.ready" ]; then
		dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/alertmanager@$ALERTMANAGER_VERSION" |
			sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		[ -n "$dir" ] || { log "go mod download of alertmanager $ALERTMANAGER_VERSION failed"; exit 1; }
		rm -rf "$src" && mkdir -p "$(dirname "$src")"
		cp -r "$dir" "$src" && chmod -R u+w "$src"
		mkdir -p "$src/ui/app/dist/elm"
		printf '<!doctype html><title>Alertmanager</title><p>This Alertmanager was built from its Go module without its web UI: use <code>amtool</code> or <a href="api/v2/alerts">/api/v2/alerts</a>.</p>\n' |
			gzip -9 >"$src/ui/app/dist/elm/index.html.gz"
		touch "$src/.ready"
	fi
	log "building alertmanager, amtool $ALERTMANAGER_VERSION (a few minutes the first time)"
	(cd "$src" && CGO_ENABLED=0 go build -mod=mod -ldflags "$(prom_ldflags "${ALERTMANAGER_VERSION#v}")" \
		-o "$BIN/" ./cmd/alertmanager ./cmd/amtool)
	stamp alertmanager "$ALERTMANAGER_VERSION"
	stamp amtool "$ALERTMANAGER_VERSION"
}

step_promtools() { step_prometheus && step_alertmanager; }

# A runnable Flink: lib/ with the runtime and its dependencies, and the
# flink-s3-fs-presto plugin under plugins/ where Flink's PluginManager looks.
# Maven Central lacks the plugin for some patch releases (1.20.5 has none):
# then the newest earlier patch of the same line is used — a plugin only
# talks to Flink through its FileSystemFactory, stable within a line — and
# plugins/s3-fs-presto/VERSION says which. A line without any (2.1) gets no
# plugin; the S3 tests say so.
step_flink() { # step_flink VERSION
	local v=$1 dir=$CACHE/flink-$1
	[ -f "$dir/.complete" ] && return 0
	log "resolving Flink $v from Maven Central"
	rm -rf "$dir"
	"${MVN[@]}" -f "$ROOT/testbed/flinkdist/pom.xml" -Dflink.version="$v" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$dir/lib"
	local patch=${v##*.} line=${v%.*} p
	for ((p = patch; p >= 0; p--)); do
		if "${MVN[@]}" -f "$ROOT/testbed/flinkdist/pom.xml" \
			org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
			-Dartifact="org.apache.flink:flink-s3-fs-presto:$line.$p" \
			-DoutputDirectory="$dir/plugins/s3-fs-presto" >/dev/null 2>&1; then
			echo "$line.$p" >"$dir/plugins/s3-fs-presto/VERSION"
			[ "$line.$p" = "$v" ] || log "flink-s3-fs-presto $v is not on Maven Central: using $line.$p"
			break
		fi
	done
	if [ ! -f "$dir/plugins/s3-fs-presto/VERSION" ]; then
		# Flink refuses to start with a plugin directory without jars.
		rm -rf "$dir/plugins"
		log "no flink-s3-fs-presto $line.x on Maven Central: Flink $v runs without S3"
	fi
	touch "$dir/.complete"
}

# The test bed's job for one Flink version, named by a hash of its sources
# (testbed.JobJar computes the same one): worktrees with different sources
# share the cache without running each other's job, and a change to the
# sources is a new jar. Each build has its own directory under the cache,
# so two builds never share target/.
step_job() { # step_job VERSION
	local v=$1 hash
	hash=$(cd "$ROOT/testbed/flinkjob" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
	local out=$CACHE/flinkjob-$v-$hash.jar
	[ -f "$out" ] && return 0
	log "building the test bed job for Flink $v (sources $hash)"
	local build=$CACHE/build/flinkjob-$v-$hash
	rm -rf "$build"
	"${MVN[@]}" -f "$ROOT/testbed/flinkjob/pom.xml" -Dflink.version="$v" -Dbuild.dir="$build" package -DskipTests
	cp "$build/flinkjob.jar" "$out.tmp" && mv "$out.tmp" "$out"
	rm -rf "$build"
	# Jars of sources nobody has built for a month: the worktrees that had them are gone.
	find "$CACHE" -maxdepth 1 -name "flinkjob-$v-*.jar" -mtime +30 -delete
}

# mod_dir MODULE VERSION: the module's read-only directory in the module cache
# (downloaded through the Go module proxy when missing).
mod_dir() {
	local tmp dir
	tmp=$(mktemp -d)
	dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	rm -rf "$tmp"
	[ -n "$dir" ] || { log "go mod download of $1@$2 failed"; exit 1; }
	echo "$dir"
}

# mod_src NAME MODULE VERSION: a writable copy of a Go module for a build that
# needs its go.mod edited; the caller touches $src/.ready once it is edited.
mod_src() {
	local src=$CACHE/src/$1-$3
	if [ ! -f "$src/.ready" ]; then
		local dir
		dir=$(mod_dir "$2" "$3")
		rm -rf "$src" && mkdir -p "$(dirname "$src")"
		cp -r "$dir" "$src" && chmod -R u+w "$src"
	fi
	echo "$src"
}

# replaced DIR REGEX: the module paths that DIR/go.mod replaces with a target
# matching REGEX.
replaced() {
	sed -n -E "s#^(replace)?[[:space:]]*([^[:space:]()]+)([[:space:]]+v[^[:space:]]+)?[[:space:]]+=>[[:space:]]+($2).*#\2#p" "$1/go.mod"
}

# timed NAME CMD...: runs CMD and records how long it took in $BIN/.NAME.buildtime
# (seconds), which the tests print.
timed() {
	local name=$1 start=$SECONDS
	shift
	"$@"
	echo $((SECONDS - start)) >"$BIN/.$name.buildtime"
}

# etcd for the test bed's Kubernetes control plane. Its go.mod replaces its
# sibling modules with directories outside the module zip: drop every
# replace and build against the published versions.
step_etcd() {
	stamped etcd "$ETCD_VERSION" && return 0
	local src
	src=$(mod_src etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
	if [ ! -f "$src/.ready" ]; then
		local old edits=()
		for old in $(replaced "$src" '.*'); do edits+=(-dropreplace "$old"); done
		(cd "$src" && go mod edit "${edits[@]}")
		touch "$src/.ready"
	fi
	log "building etcd $ETCD_VERSION (about a minute the first time)"
	(cd "$src" && timed etcd env GOWORK=off CGO_ENABLED=0 go build -mod=mod -trimpath -o "$BIN/etcd.tmp" .)
	mv "$BIN/etcd.tmp" "$BIN/etcd"
	stamp etcd "$ETCD_VERSION"
}

# kube-apiserver and kube-controller-manager. k8s.io/kubernetes replaces its
# k8s.io/* libraries with ./staging/..., which the module zip leaves out:
# drop those replaces and require the published k8s.io/<name> v0.<minor>.<patch>.
# The version ldflags matter: helm reads the server's version (the chart
# refuses native sidecars below 1.29), and a v0.0.0 binary would report so.
step_kube() {
	stamped kube-apiserver "$KUBE_VERSION" && stamped kube-controller-manager "$KUBE_VERSION" && return 0
	local src lib=v0.${KUBE_VERSION#v1.}
	src=$(mod_src kubernetes k8s.io/kubernetes "$KUBE_VERSION")
	if [ ! -f "$src/.ready" ]; then
		local old edits=()
		for old in $(replaced "$src" '\./staging/'); do edits+=(-dropreplace "$old" -require "$old@$lib"); done
		(cd "$src" && go mod edit "${edits[@]}")
		touch "$src/.ready"
	fi
	local minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	local ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	log "building kube-apiserver and kube-controller-manager $KUBE_VERSION (a few minutes the first time)"
	rm -rf "$BIN/.kube.tmp" && mkdir -p "$BIN/.kube.tmp"
	(cd "$src" && timed kube env GOWORK=off CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" \
		-o "$BIN/.kube.tmp/" ./cmd/kube-apiserver ./cmd/kube-controller-manager)
	mv "$BIN/.kube.tmp/kube-apiserver" "$BIN/.kube.tmp/kube-controller-manager" "$BIN/"
	rmdir "$BIN/.kube.tmp"
	stamp kube-apiserver "$KUBE_VERSION"
	stamp kube-controller-manager "$KUBE_VERSION"
}

# The CRDs the chart's tests apply before `helm install`: prometheus-operator's
# (PodMonitor, PrometheusRule) and cert-manager's (Certificate, Issuer), read
# from the module cache at test time, never copied into the repo.
step_crds() {
	local dir
	dir=$(mod_dir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")
	[ -f "$dir/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" ] ||
		{ log "no CRDs in $dir"; exit 1; }
	dir=$(mod_dir github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION")
	[ -f "$dir/deploy/crds/cert-manager.io_certificates.yaml" ] || { log "no CRDs in $dir"; exit 1; }
}

# Flink's native-Kubernetes deployer (flink-kubernetes, the code the Flink
# Kubernetes Operator creates JobManagers with), and the operator's API jars,
# which carry its FlinkDeployment CRD.
step_flinkk8s() {
	local dir=$CACHE/flink-kubernetes want=("org.apache.flink:flink-kubernetes:$FLINK_KUBERNETES_VERSION") a v
	for v in $FLINK_OPERATOR_VERSIONS; do want+=("org.apache.flink:flink-kubernetes-operator-api:$v"); done
	mkdir -p "$dir"
	for a in "${want[@]}"; do
		IFS=: read -r _ name v <<<"$a"
		[ -f "$dir/$name-$v.jar" ] && continue
		log "fetching $a from Maven Central"
		"${MVN[@]}" -f "$ROOT/testbed/flinkdist/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
			-Dartifact="$a" -DoutputDirectory="$dir"
	done
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(golangci statsd helm promtools flink job loki otelcol etcd kube crds flinkk8s)
case $FLINK_VERSIONS in
test | all) FLINK_VERSIONS=$(flink_versions "$FLINK_VERSIONS") ;;
esac
# The default version first, then the others, each once.
versions=("$FLINK_VERSION")
for v in $FLINK_VERSIONS; do
	[ "$v" = "$FLINK_VERSION" ] || versions+=("$v")
done
# One lock per step (and Flink version): two test runs at once (or a test
# run beside `make demo`) wait for each other's build instead of writing
# the same files.
locked() { # locked NAME COMMAND...
	local lock
	exec {lock}>"$CACHE/.lock-$1"
	flock "$lock"
	"${@:2}"
	exec {lock}>&-
}
for s in "${steps[@]}"; do
	case $s in
	flink | job) for v in "${versions[@]}"; do locked "$s-$v" "step_$s" "$v"; done ;;
	*) locked "$s" "step_$s" ;;
	esac
done
log "tools ready in $CACHE"
