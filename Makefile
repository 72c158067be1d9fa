# flink-agent — `make demo` runs a real local Flink with the agent attached,
# `make test` runs every test against real components. Both install what
# they need (scripts/tools.sh, cached in $(FLINK_AGENT_CACHE)) first.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

export FLINK_AGENT_CACHE ?= $(HOME)/.cache/flink-agent
# The test bed's Flink versions are in testbed/flink-versions.txt; FLINK_VERSION
# (one version) and FLINK_VERSIONS (test, all or a list) override them.
FLINK_VERSION_LIST = $(shell awk '!/^\#/ && NF {print $$1}' testbed/flink-versions.txt)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH  ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock's: the same commit builds the same binary.
BUILD_DATE ?= $(shell git log -1 --format=%cd --date=format:%Y%m%d-%H:%M:%S 2>/dev/null || echo unknown)
# --version and flink_agent_build_info read prometheus/common/version.
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(COMMIT) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)
BUILD_OUT ?= bin/flink-agent
GO_TEST_TIMEOUT ?= 60m

.PHONY: all build tools test test-compat test-loss test-unit fuzz bench bench-compare bench-footprint demo lint docker capture-fixtures clean help

all: lint build test

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## static binary in bin/flink-agent
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BUILD_OUT) ./cmd/flink-agent

tools: ## install test-bed tools into $FLINK_AGENT_CACHE (Flink 1.20 and the newest 2.x, Loki, statsd_exporter, helm, Prometheus, Alertmanager, promtool, amtool, etcd, kube-apiserver, kube-controller-manager, flink-kubernetes, CRDs)
	scripts/tools.sh

# The filter keeps test names, results and t.Log lines (where the integration
# tests print what they measured) and drops the rest of -v's chatter.
test: tools lint ## golangci-lint, go vet, gofmt, every test, real components included, and 5 s of each fuzz target (the CI command)
	go test -count=1 -v -timeout $(GO_TEST_TIMEOUT) ./... 2>&1 | tee $(FLINK_AGENT_CACHE)/last-test.log | \
		grep --line-buffered -E '^(=== RUN|\s*--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\s+\S+\.go:[0-9]+: )' | grep -v '^=== RUN'
	scripts/fuzz.sh 5s

FUZZTIME ?= 1m
fuzz: ## every Go fuzz target for $(FUZZTIME) each (make test runs each for 5s)
	scripts/fuzz.sh $(FUZZTIME)

test-compat: tools ## the collector and the log analysis on every Flink of testbed/flink-versions.txt, with a table
	FLINK_VERSIONS=all scripts/tools.sh flink job
	status=0; FLINK_VERSIONS=all go test -count=1 -v -timeout 60m -run 'TestCompat$$' ./compat/ 2>&1 | \
		tee $(FLINK_AGENT_CACHE)/last-test-compat.log | \
		grep --line-buffered -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\s+\S+\.go:[0-9]+: )' || status=$$?; \
		cat $(FLINK_AGENT_CACHE)/compat-table.md; exit $$status

test-loss: tools ## only the shipper's loss tests: 1M lines, rotations, a Loki outage, SIGTERM and SIGKILL restarts
	go test -count=1 -v -timeout 20m -run 'TestLoss' ./shipper/

test-unit: ## every test that needs no installed tool, in under a minute (go test -short: the fast loop)
	go test -short -count=1 ./...

bench: tools ## Go benchmarks and whole-process runs
	go test -run '^$$' -bench . -benchmem -count=1 ./...
	@[ ! -x scripts/bench.sh ] || scripts/bench.sh

bench-compare: tools ## flink-agent against Promtail on the same file and receiver
	scripts/tools.sh promtail
	scripts/bench-compare.sh

bench-footprint: ## the agent, the OTel Collector (filelog) and Promtail at 2,000 events/s: CPU, RSS, counts, latency (BASE=<ref> adds a before)
	scripts/tools.sh otelcol_filelog promtail
	scripts/bench-footprint.sh

capture-fixtures: tools ## re-record real Flink REST answers into collector/testdata/flink-<version>, every version
	FLINK_VERSIONS=all scripts/tools.sh flink job
	for v in $(FLINK_VERSION_LIST); do go run ./testbed/cmd/capture -version $$v; done

demo: tools build ## a real Flink + Loki + statsd_exporter with the agent attached, until Ctrl-C
	go run ./testbed/cmd/demo --agent bin/flink-agent

lint: ## golangci-lint (.golangci.yml: errcheck, staticcheck, unused, gocritic, revive), go vet, gofmt
	scripts/tools.sh golangci
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(FLINK_AGENT_CACHE)/bin/golangci-lint run ./...

docker: ## container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t flink-agent:$(VERSION) .

clean:
	rm -rf bin dist
