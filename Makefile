# Instant: common tasks. `make help` lists them.
GO      ?= go
GOBIN   := $(shell $(GO) env GOBIN)
ifeq ($(GOBIN),)
GOBIN   := $(shell $(GO) env GOPATH)/bin
endif
export PATH := $(GOBIN):$(PATH)

.PHONY: help centrifugo run test vet js bench fuzz build clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

centrifugo: ## install Centrifugo v6.9.1 (go install, cached)
	scripts/install-centrifugo.sh

run: centrifugo ## run the whole system locally: embedded NATS, Centrifugo, bridge, token service
	$(GO) run ./cmd/devstack

test: centrifugo vet js examples/node/node_modules/.package-lock.json ## run every test: Go (integration and browser tests included) and the JS client's
	$(GO) test -race -count=1 -timeout 20m ./...

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@out="$$(gofmt -l cmd internal pkg examples clients/js/embed.go)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

js: clients/js/node_modules/.package-lock.json ## the JS client: type check, unit tests, and a check that the committed bundles are fresh
	cd clients/js && npm test && npm run check

# npm ci (the pinned lockfile) when node_modules is missing or older than the lockfile.
%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund

bench: centrifugo ## hot-path micro-benchmarks and the end-to-end throughput benchmark
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/envelope/ ./pkg/acl/ ./internal/bridge/
	$(GO) run ./cmd/instant-bench

fuzz: ## fuzz the envelope decoder for a minute, the Centrifugo batch body and reply for 10s each
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./pkg/envelope/
	$(GO) test -run '^$$' -fuzz '^FuzzBatchBody$$' -fuzztime 10s ./internal/centrifugo/
	$(GO) test -run '^$$' -fuzz '^FuzzParseBatchReply$$' -fuzztime 10s ./internal/centrifugo/

build: ## build the binaries into ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

clean: ## remove build outputs and local state
	rm -rf bin .devstack
