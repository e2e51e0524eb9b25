# rdd — see README.md. Two commands matter: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/rdd
# Race-enabled tests on 2 cores start several dockerd and an apiserver: be generous.
TEST_TIMEOUT ?= 20m

.PHONY: all build test test-deps unit bench fuzz chaos run stop lint fmt vet clean

all: build

# A static binary: no dynamic loader at every CLI start (about 0.8 ms here).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rdd

# test installs what the tests need when it is missing (Debian packages when
# root, the kube-apiserver test binary and the stand-in k3s into .cache/), then
# runs every test with -race. -count=1: the e2e tests build the binary
# themselves, so Go's test cache cannot see when the daemon changed.
test: test-deps lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-deps:
	./hack/test-deps.sh

# unit runs the tests without installing anything first.
unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# bench runs every Go benchmark five times (quote medians) and the
# whole-command figures of hack/bench-cli.sh against a real daemon.
bench: test-deps build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 -timeout 60m ./... | tee bench.out
	./hack/bench-cli.sh | tee -a bench.out

# fuzz runs every fuzz target for FUZZTIME each (default 10m): make fuzz FUZZTIME=30s
fuzz:
	./hack/fuzz.sh

# chaos runs the chaos harness (internal/e2e/chaos_test.go) for CHAOS_ROUNDS
# rounds (default 100) of kill -9 of the daemon during sets and engine
# restarts, and of dockerd; make test runs 10. RDD_CHAOS_SEED=N replays a run.
CHAOS_ROUNDS ?= 100
chaos: test-deps
	RDD_CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(GO) test -race -count=1 -timeout 60m -run '^TestChaos$$' -v ./internal/e2e

# run builds rdd, starts its daemon (host driver on Linux) and brings the
# environment up: `rdd start` returns when everything is Settled.
run: build
	@command -v dockerd >/dev/null || { echo "make run needs dockerd: sudo apt-get install docker.io (or: sudo make test-deps)" >&2; exit 1; }
	RDD_VM_DRIVER=$${RDD_VM_DRIVER:-host} ./$(BIN) start
	./$(BIN) status

stop: build
	./$(BIN) stop
	./$(BIN) svc stop

lint: fmt vet

fmt:
	@out="$$(gofmt -l cmd internal)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

clean:
	rm -rf bin bench.out
