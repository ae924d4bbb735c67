# berth — see README.md. Every target installs what it needs: CI and a new engineer start from a fresh machine.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= v0.1.0
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -E=berth_rt0 -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TOOLS   := .tools/bin
APT_PKGS := tini dumb-init catatonit hyperfine podman runc busybox-static time gcc buildah ca-certificates qemu-user-static

export CGO_ENABLED := 0
export GOTOOLCHAIN := local
# moto_server lives beside the Python that has moto (pyenv here); a non-login CI shell may not have it on PATH.
PYBIN := $(shell python3 -c 'import os, sys; print(os.path.join(sys.prefix, "bin"))' 2>/dev/null)
export PATH := $(PATH):$(PYBIN):$(HOME)/.pyenv/shims

.PHONY: all build deps tools test vet fmt-check fuzz bench faults demo clean image release release-dist

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth

# Debian packages for tests, benchmarks and the container examples; moto_server (Python moto 5) for AWS.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v moto_server >/dev/null || pip install -q 'moto[server]>=5,<6' || \
		{ echo "moto_server is missing and could not be installed (pip install 'moto[server]')"; exit 1; }
	@command -v unshare >/dev/null || { echo "unshare (util-linux) is missing"; exit 1; }

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
test: deps tools fmt-check vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 40m ./...
	@$(MAKE) --no-print-directory fuzz

# Every fuzz target (func FuzzXxx in a *_test.go) for FUZZTIME each; `make test` runs it briefly. A failing
# input is written to the package's testdata/fuzz/FuzzXxx/ and printed.
FUZZTIME ?= 5s
fuzz:
	@for dir in $$(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do \
		for fn in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -d' ' -f2); do \
			echo "fuzz $$fn (./$$dir, $(FUZZTIME))"; \
			run() { $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$dir 2>&1; }; \
			out=$$(run) || { \
				if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
					echo "  go's fuzz coordinator timed out on a loaded machine (no failing input): once more"; \
					out=$$(run) || { echo "$$out" | tail -40; exit 1; }; \
				else echo "$$out" | tail -40; exit 1; fi; }; \
		done; \
	done

bench: deps tools build
	bench/run.sh

# Every fault scenario, slow ones included; writes bench/FAULTS.md (the fast ones also run in `make test`).
faults: deps tools
	bench/faults.sh

demo: deps tools build
	examples/demo/run.sh

# The example image, built FROM scratch with podman (see examples/dockerfile).
image: build
	examples/dockerfile/build.sh

# `make release VERSION=vX.Y.Z [DIST=dist]`: static linux/amd64 and linux/arm64 binaries built with LDFLAGS, one
# OCI image archive per arch and a multi-arch one (buildah, nothing pulled) and SHA256SUMS, in the git-ignored
# DIST (emptied first). A tree with uncommitted changes is stamped COMMIT-dirty. See release/release.sh.
DIST ?= dist
release: deps
	@[[ "$(origin VERSION)" == "command line" && "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]] || \
		{ echo "usage: make release VERSION=vX.Y.Z (have VERSION=$(VERSION) from the $(origin VERSION))"; exit 2; }
	@$(MAKE) --no-print-directory release-dist COMMIT=$(COMMIT)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

release-dist:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' LDFLAGS='$(LDFLAGS)' DIST='$(DIST)' release/release.sh

clean:
	rm -rf bin
