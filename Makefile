# Outpost — run `make` (or `make help`) to see the targets.
# Everything a fresh Debian machine with Go needs is installed by the targets
# themselves (Debian packages via apt when run as root).

GO          ?= go
BIN         := bin
DIST        := dist
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Debian packages the tests drive for real: a browser for the portal test,
# qemu to run the arm builds.
TEST_DEBS   := chromium qemu-user-static
BENCH_DEBS  := nginx-light rsync kiwix-tools zim-tools
export CGO_ENABLED := 0

.DEFAULT_GOAL := help
.PHONY: help run build release test lint bench deps-test deps-bench clean fuzz

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Outpost make targets:\n\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## Run the demo: a box with a sample course; prints the URL to open
	$(BIN)/outpost demo

build: ## Build bin/outpost for this machine (CGO_ENABLED=0)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/outpost ./cmd/outpost

release: ## Build static binaries for linux amd64, arm64 and armv7 into dist/
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/outpost-linux-amd64 ./cmd/outpost
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/outpost-linux-arm64 ./cmd/outpost
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/outpost-linux-armv7 ./cmd/outpost

test: deps-test lint release ## Run every test (installs chromium and qemu-user-static when root)
	$(GO) test -count=1 -timeout 15m ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: build deps-bench ## Benchmarks against nginx, sha256sum/openssl, rsync and kiwix-serve; see docs/BENCHMARKS.md
	scripts/bench.sh

fuzz: ## Run each fuzz target for FUZZTIME (default 30s)
	scripts/fuzz.sh $(or $(FUZZTIME),30s)

deps-test: ## Install (or name) the Debian packages the tests need
	@scripts/debdeps.sh $(TEST_DEBS)

deps-bench:
	@scripts/debdeps.sh $(BENCH_DEBS)

clean: ## Remove build outputs
	rm -rf $(BIN) $(DIST)
