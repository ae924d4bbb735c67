# syntax=docker/dockerfile:1
# berth's image, for users who build it with docker (buildx cross-compiles, no emulation):
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse --short HEAD) \
#     -t berth:dev .
#
# Its root filesystem (release/rootfs.sh): /usr/local/bin/berth, a CA bundle at
# /etc/ssl/certs/ca-certificates.crt, /tmp (1777) and /var/run (berth's control socket, for `berth health`).
# The ENTRYPOINT is berth itself, so `docker run berth version` works and an ECS container definition can say
# `command: ["run", "-config", …]`. Use it as a base (FROM berth, COPY your app, ENTRYPOINT berth --) or copy
# berth out of it:
#
#   COPY --from=berth:dev /usr/local/bin/berth /usr/local/bin/berth
#
# `make release` builds the final stage of this same file with buildah, from a locally built binary: it
# stands in for the build stage with --build-context build=DIR, so nothing is pulled (see release/release.sh).
# go.mod's go line: `make build` sets GOTOOLCHAIN=local, so an older Go refuses the module (tests/release_test.go
# TestReleaseDockerfile keeps the two equal).
ARG GO_VERSION=1.26.8
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# `make build` holds the release link flags (static, -trimpath, -E=berth_rt0, version and commit stamped).
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH make build VERSION="$VERSION" COMMIT="$COMMIT" \
 && install -D -m 0755 bin/berth /rootfs/usr/local/bin/berth \
 && sh release/rootfs.sh /rootfs

FROM scratch
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="PID 1 entrypoint supervisor and secrets/Consul sidecar for ECS" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["version"]
