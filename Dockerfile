# Release image of berth itself: a static binary in an empty image, to COPY --from into application images:
#
#   COPY --from=berth /berth /usr/local/bin/berth
#   ENTRYPOINT ["/usr/local/bin/berth", "--"]
#   CMD ["app", "--flag"]
#
# (This machine has no registry access; examples/dockerfile builds a test image FROM scratch with podman.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -E=berth_rt0 -X main.version=${VERSION}" -o /berth ./cmd/berth

FROM scratch
COPY --from=build /berth /berth
ENTRYPOINT ["/berth"]
