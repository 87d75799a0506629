# The README's commands. `make test` is what CI runs.
GO ?= go
# The test recipe pipes go test into its summary and must keep go test's
# exit status: pipefail is a bash option.
SHELL := /bin/bash

.PHONY: test alerts demo bench build fuzz staticcheck

# test: formatting, no binaries in the repository, vet and staticcheck
# (both modules), then every test
# with the race detector on (fuzz targets run their seed corpora), and how
# many tests were skipped and why. Temporary files of the run (the test
# binaries, browser profiles) go to a folder removed afterwards, open to
# every user as /tmp is (the test PostgreSQL servers run as postgres).
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r find 2>/dev/null -maxdepth 0 -type f -size +1M); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MiB (build output?): $$big"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./... && $(GO) test ./...
	$(MAKE) --no-print-directory staticcheck
	@# Allocation counts are only true without the race detector, which
	@# the run below always has on: they are checked here, once.
	$(GO) test -run 'AllocationsStayWithin' ./router ./store
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && set -o pipefail && \
	chmod 1777 "$$tmp" && \
	TMPDIR=$$tmp $(GO) test -race -timeout 15m -json ./... | $(GO) run ./internal/testsummary

# alerts: check the alert rules and run their unit tests with promtool
# (Debian: apt-get install prometheus), as a user would.
alerts:
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml

demo:
	$(GO) run ./cmd/strangler demo

# staticcheck: the linter, at a pinned version the go command fetches
# from the module proxy (and caches) on first use, over both modules.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
staticcheck:
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/strangler ./cmd/strangler

# bench: the performance comparisons, each measured in one run: the facade
# vs a bare Go proxy and peers, each mode vs plain proxying, the backfill vs
# pgloader, and the request path's micro-benchmarks.
# The benchmark tools are a module of their own (bench/), so that the
# repository's build and tests never need it.
bench:
	$(GO) test ./router ./stats ./shadow -run '^$$' -bench . -benchmem
	cd bench && $(GO) run ./proxy
	cd bench && $(GO) run ./backfill
	cd bench && $(GO) run ./backfill -scale -rows 50000 -rounds 3

# fuzz: a short run (FUZZTIME each) of every fuzz target in the
# repository, found by name so that a new one is never left out; their
# seed corpora run in `test`.
FUZZTIME ?= 30s
fuzz:
	@set -e -o pipefail; \
	grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			echo "$$(dirname "$$file") $$target"; \
			$(GO) test "$$(dirname "$$file")" -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME); \
		done; \
	done
