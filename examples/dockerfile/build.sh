#!/usr/bin/env bash
# `make image` runs this (the Makefile passes GO, VERSION, COMMIT, LDFLAGS, IMAGE and BERTH_IMAGE). It builds,
# with podman and without pulling anything, for this machine's architecture:
#
#   BERTH_IMAGE (localhost/berth:dev)       berth's image as `make release` builds it: the root Dockerfile's
#                                           final stage on the root filesystem of release/rootfs.sh (berth, a
#                                           CA bundle, /tmp, /var/run), berth linked with LDFLAGS (static,
#                                           -E=berth_rt0, version and commit stamped). ENTRYPOINT berth.
#   IMAGE (localhost/berth-example)         examples/dockerfile/Dockerfile FROM it: an application image with
#                                           the repository's test app as /usr/local/bin/app, ENTRYPOINT
#                                           berth --. Its golang build stage is stood in for by the app built
#                                           here (--build-context build=DIR).
#
# The ECS sidecar image is examples/sidecar/Dockerfile FROM BERTH_IMAGE (its ENTRYPOINT stays berth, so
# command: ["run", "-config", ...] works); an application image never holds the sidecar's configs.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VERSION:?VERSION is required}" "${COMMIT:?COMMIT is required}" "${LDFLAGS:?LDFLAGS is required}"
GO=${GO:-go}
IMAGE=${IMAGE:-localhost/berth-example}
BERTH_IMAGE=${BERTH_IMAGE:-localhost/berth:dev}
case "$LDFLAGS" in
*-E=berth_rt0*) ;;
*) echo "image: LDFLAGS lacks -E=berth_rt0 (berth's entry point, supervisor/inherit_linux_*.s)" >&2; exit 1 ;;
esac
command -v podman >/dev/null || { echo "image: podman is missing (make deps-image)" >&2; exit 1; }

P=(podman --storage-driver vfs)
arch=$("$GO" env GOARCH)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/context" "$work/app/out"

CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$work/berth" ./cmd/berth
install -D -m 0755 "$work/berth" "$work/build/rootfs/usr/local/bin/berth"
release/rootfs.sh "$work/build/rootfs"
"${P[@]}" build --quiet --isolation chroot --platform "linux/$arch" --build-context "build=$work/build" \
	--build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT" -t "$BERTH_IMAGE" -f Dockerfile "$work/context" >/dev/null

CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -o "$work/app/out/app" ./tests/testapp
"${P[@]}" build --quiet --isolation chroot --platform "linux/$arch" --build-context "build=$work/app" --build-arg "BERTH_IMAGE=$BERTH_IMAGE" \
	-t "$IMAGE" -f examples/dockerfile/Dockerfile "$work/context" >/dev/null

run="podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs run --rm --ulimit nofile=20000:20000 --ulimit nproc=1000:1000"
echo "image: $BERTH_IMAGE (berth $VERSION, $COMMIT) and $IMAGE (the example app FROM it); run them with:"
echo "  $run $BERTH_IMAGE                                  # berth version"
echo "  $run $IMAGE /usr/local/bin/app -say hello -code 3  # the app under berth as PID 1: prints hello, exits 3"
