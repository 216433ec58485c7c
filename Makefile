# hubhooks — see README.md. Every target works on a fresh machine with Go and redis-server.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/hubhooks/hubhooks/pkg/webhook.Version=$(VERSION)
BIN := $(CURDIR)/bin
TOOLS := $(BIN)/tools
BINARIES := hubd configsvc expander deliverer logger gateway hubbench hubctl
MODULES := ./proto/... ./pkg/... ./services/...

# Pinned code generators (installed into bin/tools by `make tools`).
BUF_VERSION := v1.47.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.1-0.20240319094008-0393e58bdf10
GRPC_GATEWAY_VERSION := v2.34.0

.PHONY: all build run test test-race vet fmt fmt-check proto proto-check tools fuzz chaos cluster bench clean redis screenshots

all: build

build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$b ./services/cmd/$$b || exit 1; \
	done
	@ls $(BIN) | grep -v tools | sed 's/^/bin\//'

run: build redis ## start the all-in-one hubd on its embedded NATS (data in ./data); prints the console's URL
	@echo "web console: http://$${HUBHOOKS_API_ADDR-127.0.0.1:8080}/"
	HUBHOOKS_ALLOWED_CIDRS=$${HUBHOOKS_ALLOWED_CIDRS-127.0.0.0/8,::1/128} HUBHOOKS_LOG_FORMAT=$${HUBHOOKS_LOG_FORMAT-text} $(BIN)/hubd

redis: ## make sure a Redis answers at HUBHOOKS_REDIS_URL (starts a local one under ./data if not)
	@deploy/scripts/ensure-redis.sh

# The e2e package (chaos, cluster, failover) takes longest: listed first, it starts first and
# the other packages run beside it.
test: fmt-check vet proto-check redis ## everything CI runs: vet, generated-code check, unit + integration + e2e + short chaos + short fuzz
	$(GO) test -count=1 -timeout 15m ./services/e2e/... $(MODULES)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

test-race: redis ## the test suite under the race detector (slower)
	$(GO) test -race -count=1 -timeout 30m $(MODULES)

vet:
	$(GO) vet $(MODULES)

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-go-vtproto $(TOOLS)/protoc-gen-grpc-gateway $(TOOLS)/protoc-gen-openapiv2

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/protoc-gen-go-vtproto:
	GOBIN=$(TOOLS) $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)
$(TOOLS)/protoc-gen-grpc-gateway:
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(TOOLS)/protoc-gen-openapiv2:
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

proto: tools ## regenerate the committed protobuf code, HTTP gateway and OpenAPI document
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

proto-check: tools ## fail if the committed generated code is stale
	@tmp=$$(mktemp -d); cp -r proto $$tmp/; \
	(cd $$tmp/proto && find . -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' | xargs rm -f && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate) || exit 1; \
	if ! diff -r -q --exclude='*.proto' --exclude='*.yaml' --exclude='go.*' proto $$tmp/proto; then \
		echo "generated protobuf code or OpenAPI document is stale: run 'make proto' and commit"; rm -rf $$tmp; exit 1; fi; \
	rm -rf $$tmp; echo "proto: generated code is current"

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each (a duration, or Nx executions; make test uses 10000x)
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg services | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/func //'); do \
			echo "fuzz ./$$dir $$f ($(FUZZTIME))"; \
			run() { $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) ./$$dir >/tmp/hubhooks-fuzz.log 2>&1; }; \
			if ! run; then \
				if grep -q 'context deadline exceeded' /tmp/hubhooks-fuzz.log && ! grep -q 'Failing input' /tmp/hubhooks-fuzz.log; then \
					echo "  (the fuzz coordinator timed out without a finding, a known go test flake: running it again)"; \
					run || { cat /tmp/hubhooks-fuzz.log; exit 1; }; \
				else cat /tmp/hubhooks-fuzz.log; exit 1; fi; \
			fi; \
		done; \
	done

chaos: build redis ## the crash/outage test against the real binaries (short version also runs in make test)
	HUBHOOKS_CHAOS=long $(GO) test -count=1 -timeout 60m -run 'TestChaos' -v ./services/e2e/...

cluster: redis ## NATS cluster and Redis failover faults at length (leader kills, R1 -> R3, rolling restarts, primaries killed); short versions in make test
	HUBHOOKS_CLUSTER=long $(GO) test -count=1 -timeout 60m -run 'TestNATSCluster|TestRedisFailover' -v ./services/e2e/...

screenshots: redis ## run the console's browser test alone (make test runs it too); it saves its screenshots into docs/console
	$(GO) test -count=1 -run 'TestConsoleInBrowser' -v ./services/gateway/

bench: build redis ## load test: hubd and its ceilings; see docs/performance.md
	$(BIN)/hubbench run $(BENCH_FLAGS)

.PHONY: bench-fairness bench-noisy bench-replay
bench-fairness: build redis ## tenant fairness: one hub's burst beside quiet hubs, side by side with each alone
	$(BIN)/hubbench -scenario fairness $(BENCH_FLAGS)

bench-noisy: build redis ## a never-answering URL beside a healthy one, at 1,000 events/s and at the highest rate
	$(BIN)/hubbench -scenario noisy $(BENCH_FLAGS)

bench-replay: build redis ## live traffic alone and beside a replay of 100,000 deliveries (ReplayDomainEvents)
	$(BIN)/hubbench -scenario replay $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
