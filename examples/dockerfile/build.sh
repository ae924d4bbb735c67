#!/usr/bin/env bash
# Build the FROM scratch example image with podman (no registry needed): make image
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-berth-example}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -E=berth_rt0" -o "$ctx/berth" ./cmd/berth
CGO_ENABLED=0 go build -trimpath -o "$ctx/testapp" ./tests/testapp
cp "$(command -v busybox)" "$ctx/busybox"
cp examples/sidecar/sidecar.hcl "$ctx/sidecar.hcl"
podman --storage-driver vfs build --isolation chroot -t "$tag" -f examples/dockerfile/Containerfile.scratch "$ctx"
echo "built $tag; run it with:"
echo "  podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs run --rm --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 $tag"
