# berth — see README.md. Every target installs what it needs: CI and a new engineer start from a fresh machine.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= v0.1.0
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -E=berth_rt0 -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TOOLS   := .tools/bin
# Debian packages, by what uses them (tools/deps.sh installs the missing ones of a target and nothing else):
#   test:    tini, dumb-init (peer-suite controls), gcc (its C children), time (GNU time), util-linux (unshare),
#            podman, runc, busybox-static (containers; the shell tests/container_test.go mounts), buildah,
#            ca-certificates (make release and make image inside the release, examples and container tests),
#            qemu-user-static (the arm64 binary); plus moto
#   bench:   tini, dumb-init, catatonit, hyperfine, time, util-linux, curl; plus moto (bench-fleet: moto only)
#   demo:    curl; plus moto (its boto3 seeds the secret)
#   release: buildah, ca-certificates          image: podman, runc, ca-certificates
APT_TEST    := tini dumb-init gcc time util-linux podman runc busybox-static buildah ca-certificates qemu-user-static
APT_BENCH   := tini dumb-init catatonit hyperfine time util-linux curl
APT_DEMO    := curl
APT_RELEASE := buildah ca-certificates
APT_IMAGE   := podman runc ca-certificates

export CGO_ENABLED := 0
export GOTOOLCHAIN := local
# moto_server lives beside the Python that has moto (pyenv here); a non-login CI shell may not have it on PATH.
PYBIN := $(shell python3 -c 'import os, sys; print(os.path.join(sys.prefix, "bin"))' 2>/dev/null)
export PATH := $(PATH):$(PYBIN):$(HOME)/.pyenv/shims

.PHONY: all build deps deps-test deps-bench deps-demo deps-release deps-image tools test vet fmt-check fuzz bench bench-fleet faults demo clean image image-build release release-dist

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth

# `make deps` installs what every target needs; each target depends on its own deps-PURPOSE only. When apt is
# locked by another process, tools/deps.sh waits up to APT_LOCK_WAIT seconds (120) and then fails in one line.
deps:
	@tools/deps.sh all --moto $(sort $(APT_TEST) $(APT_BENCH) $(APT_DEMO) $(APT_RELEASE) $(APT_IMAGE))
deps-test:
	@tools/deps.sh test --moto $(APT_TEST)
deps-bench:
	@tools/deps.sh bench --moto $(APT_BENCH)
deps-demo:
	@tools/deps.sh demo --moto $(APT_DEMO)
deps-release:
	@tools/deps.sh release $(APT_RELEASE)
deps-image:
	@tools/deps.sh image $(APT_IMAGE)

# Real Consul and nats-server, pinned in tools/go.mod, built once into the git-ignored .tools/bin.
tools: $(TOOLS)/consul $(TOOLS)/nats-server

$(TOOLS)/consul: tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS)
	@echo "building consul from tools/go.mod (several minutes the first time)"
	cd tools && $(GO) build -o ../$(TOOLS)/consul github.com/hashicorp/consul

$(TOOLS)/nats-server: tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS)
	cd tools && $(GO) build -o ../$(TOOLS)/nats-server github.com/nats-io/nats-server/v2

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# vet on Linux, and on macOS too: the module builds there (gopls, go vet), though `berth run` supervises on
# Linux only.
vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

# The README's test command. Unit tests, and e2e tests that drive the real binary against real Consul,
# moto_server, nats-server and PID namespaces.
test: deps-test tools fmt-check vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 40m ./...
	@$(MAKE) --no-print-directory fuzz

# Every fuzz target (func FuzzXxx in a *_test.go) for FUZZTIME each; `make test` runs it briefly. A failing
# input is written to the package's testdata/fuzz/FuzzXxx/ and printed. FUZZTIME is a count of executions
# ("20000x") by default, not a duration: with a duration, Go 1.26's fuzz coordinator can report "context
# deadline exceeded" at the deadline with no failing input on a busy machine (golang/go#75804, fixed in Go
# 1.27); a count has no deadline to race. FUZZTIME=5m runs a target for a duration.
FUZZTIME ?= 20000x
fuzz:
	@for dir in $$(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do \
		for fn in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -d' ' -f2); do \
			echo "fuzz $$fn (./$$dir, $(FUZZTIME))"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$dir 2>&1) || { echo "$$out" | tail -40; exit 1; }; \
		done; \
	done

bench: deps-bench tools build
	bench/run.sh

# The fleet simulation, loopback only, about 5 minutes: 200 berths against one Consul, start-up herds of up to
# 2,000 tasks against SSM's default quota. Writes bench/FLEET.md.
bench-fleet: deps-bench tools build
	bench/fleet.sh

# Every fault scenario, slow ones included; writes bench/FAULTS.md (the fast ones also run in `make test`).
faults: deps-test tools
	bench/faults.sh

demo: deps-demo tools build
	examples/demo/run.sh

# `make image [IMAGE=localhost/berth-example] [BERTH_IMAGE=localhost/berth:dev]`: with podman, nothing pulled,
# for this machine's arch: BERTH_IMAGE is berth's image as `make release` builds it (the root Dockerfile's final
# stage on release/rootfs.sh, berth linked with LDFLAGS, stamped COMMIT-dirty from an uncommitted tree), IMAGE
# is examples/dockerfile/Dockerfile FROM it with the test app. See examples/dockerfile/build.sh.
IMAGE       ?= localhost/berth-example
BERTH_IMAGE ?= localhost/berth:dev
image: deps-image
	@$(MAKE) --no-print-directory image-build COMMIT=$(COMMIT)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

image-build:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' LDFLAGS='$(LDFLAGS)' IMAGE='$(IMAGE)' BERTH_IMAGE='$(BERTH_IMAGE)' \
		examples/dockerfile/build.sh

# `make release VERSION=vX.Y.Z [DIST=dist]`: static linux/amd64 and linux/arm64 binaries built with LDFLAGS, one
# OCI image archive per arch and a multi-arch one (buildah, nothing pulled) and SHA256SUMS, in the git-ignored
# DIST (emptied first). A tree with uncommitted changes is stamped COMMIT-dirty. See release/release.sh.
DIST ?= dist
release: deps-release
	@[[ "$(origin VERSION)" == "command line" && "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]] || \
		{ echo "usage: make release VERSION=vX.Y.Z (have VERSION=$(VERSION) from the $(origin VERSION))"; exit 2; }
	@$(MAKE) --no-print-directory release-dist COMMIT=$(COMMIT)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

release-dist:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' LDFLAGS='$(LDFLAGS)' DIST='$(DIST)' release/release.sh

clean:
	rm -rf bin
