# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: test alerts demo bench build fuzz

# test: formatting, vet, then every test with the race detector on.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...

# alerts: check the alert rules and run their unit tests with promtool
# (Debian: apt-get install prometheus), as a user would.
alerts:
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml

demo:
	$(GO) run ./cmd/strangler demo

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/strangler ./cmd/strangler

# bench: the performance comparisons, each measured in one run: the facade
# vs a bare Go proxy and peers, each mode vs plain proxying, the backfill vs
# pgloader, and the request path's micro-benchmarks.
bench:
	$(GO) test ./router ./stats ./shadow -run '^$$' -bench . -benchmem
	$(GO) run ./cmd/bench
	$(GO) run ./cmd/benchbackfill

# fuzz: a short run of each fuzz target (their seed corpora run in `test`).
fuzz:
	$(GO) test ./config -run '^$$' -fuzz FuzzParse -fuzztime 30s
	$(GO) test ./router -run '^$$' -fuzz FuzzMatch -fuzztime 30s
	$(GO) test ./edge/canonical -run '^$$' -fuzz FuzzCanonical -fuzztime 30s
	$(GO) test ./edge -run '^$$' -fuzz FuzzFraming -fuzztime 30s
	$(GO) test ./internal/dsn -run '^$$' -fuzz FuzzRedact -fuzztime 30s
