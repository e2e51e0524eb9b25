# rdd — see README.md. Two commands matter: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock's: the same commit builds the same binary.
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
BIN := bin/rdd
# Race-enabled tests on 2 cores start several dockerd and an apiserver: be generous.
TEST_TIMEOUT ?= 20m

.PHONY: all build build-lima test test-deps unit bench fuzz chaos run stop lint fmt vet clean vm-image vm-baseline e2e

all: build

# A static binary: no dynamic loader at every CLI start (about 0.8 ms here).
# It carries the lima driver's programs (rdd-lima and Lima's guest agent,
# gzipped, see internal/vm/lima/bundle) and extracts them on first use;
# bin/ holds them unpacked too, which a plain `go build` of rdd finds.
build: build-lima
	CGO_ENABLED=0 $(GO) build -trimpath -tags limabundle -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rdd

LIMA_VERSION := $(shell $(GO) list -m -f '{{.Version}}' github.com/lima-vm/lima)
LIMA_LDFLAGS := -s -w -X github.com/lima-vm/lima/pkg/version.Version=$(LIMA_VERSION)
LIMA_ARCH := $(shell uname -m | sed 's/arm64/aarch64/')
BUNDLE := internal/vm/lima/bundle

build-lima:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LIMA_LDFLAGS)' -o bin/rdd-lima ./cmd/rdd-lima
	GOOS=linux CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LIMA_LDFLAGS)' -o bin/lima-guestagent.Linux-$(LIMA_ARCH) github.com/lima-vm/lima/cmd/lima-guestagent
	gzip -6 -c bin/rdd-lima > $(BUNDLE)/rdd-lima.gz
	gzip -6 -c bin/lima-guestagent.Linux-$(LIMA_ARCH) > $(BUNDLE)/lima-guestagent.gz
	cat $(BUNDLE)/rdd-lima.gz $(BUNDLE)/lima-guestagent.gz | sha256sum | cut -c1-16 > $(BUNDLE)/digest

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

# vm-image builds the lima driver's guest image (Debian bookworm, Docker, Lima's
# guest agent) from the configured Debian mirror, offline otherwise, and caches
# it in ${RDD_VM_IMAGE_DIR:-~/.cache/rdd/vm-image}/<recipe hash>/; it prints
# the RDD_VM_IMAGE line (vmlinuz, initrd.img and cmdline sit next to disk.qcow2).
# Building needs root (sudo make vm-image); a cached image is just printed.
vm-image:
	./hack/vm-image.sh

# vm-baseline boots that image with plain limactl (TCG, restrict=on) as an
# unprivileged user and prints boot/docker/stop timings: the figures `rdd start`
# with the lima driver is compared against. Heavy: one TCG boot.
vm-baseline:
	./hack/vm-baseline.sh

# e2e boots a real VM with the lima driver and checks it end to end
# (internal/e2e/limae2e): opt-in, 20-40 minutes under software emulation.
# As root it runs the test as an unprivileged user it creates (Lima refuses root).
e2e:
	./hack/e2e-lima.sh

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
