#!/usr/bin/env bash
# `make release VERSION=vX.Y.Z` runs this (the Makefile passes VERSION, COMMIT, LDFLAGS, GO and DIST).
# It writes, into DIST (default dist/, git-ignored, emptied first):
#
#   berth_VERSION_linux_amd64, berth_VERSION_linux_arm64   static binaries (CGO_ENABLED=0, -trimpath, LDFLAGS)
#   berth_VERSION_image_linux_ARCH.oci.tar                 one OCI image archive per arch (also docker load's)
#   berth_VERSION_image.oci.tar                            both images under one OCI index (multi-arch)
#   SHA256SUMS                                             sha256sum of every file above
#
# The images are the final stage of the root Dockerfile, built by buildah without pulling anything: the
# Dockerfile's build stage is replaced (--build-context build=DIR) by a directory holding rootfs/, staged
# here from the binary just built by release/rootfs.sh, the script that stage runs. Every file in the images
# and archive entry gets the commit's time (--timestamp, repack), so two runs on one commit write the same
# bytes: SHA256SUMS does not change.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?VERSION is required}" "${COMMIT:?COMMIT is required}" "${LDFLAGS:?LDFLAGS is required}"
GO=${GO:-go}
DIST=${DIST:-dist}
ARCHES=${ARCHES:-amd64 arm64}

for tool in buildah sha256sum python3; do
	command -v "$tool" >/dev/null || { echo "release: $tool is missing (make deps)" >&2; exit 1; }
done
case "$LDFLAGS" in
*-E=berth_rt0*) ;;
*) echo "release: LDFLAGS lacks -E=berth_rt0 (berth's entry point, supervisor/inherit_linux_*.s)" >&2; exit 1 ;;
esac

B=(buildah --storage-driver vfs)
list=localhost/berth:$VERSION
work=$(mktemp -d)
images=()
cleanup() {
	"${B[@]}" manifest rm "$list" >/dev/null 2>&1 || true
	for img in "${images[@]}"; do "${B[@]}" rmi -f "$img" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# repack rewrites an OCI archive with sorted entries, the commit's time and root ownership: buildah's own tar
# wrapper carries the time of the push, and SHA256SUMS should not change between two runs on one commit.
# With a second argument (the image's name) it adds docker's manifest.json beside index.json, pointing at the
# same blobs, as `docker save` writes since Docker 25: `docker load` reads such an archive with or without the
# containerd image store.
repack() {
	local dir=$work/repack
	rm -rf "$dir" && mkdir "$dir"
	tar -xf "$1" -C "$dir"
	if [[ -n ${2:-} ]]; then
		python3 - "$dir" "$2" <<'PY'
import json, sys
d, tag = sys.argv[1], sys.argv[2]
blob = lambda digest: "blobs/sha256/" + digest.split(":", 1)[1]
(desc,) = json.load(open(d + "/index.json"))["manifests"]
m = json.load(open(d + "/" + blob(desc["digest"])))
json.dump([{"Config": blob(m["config"]["digest"]), "RepoTags": [tag],
            "Layers": [blob(l["digest"]) for l in m["layers"]]}], open(d + "/manifest.json", "w"))
PY
	fi
	tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=ustar \
		-cf "$1" -C "$dir" $(cd "$dir" && ls)
}
"${B[@]}" manifest rm "$list" >/dev/null 2>&1 || true # a list left by an interrupted run would collect twice

rm -rf "$DIST"
mkdir -p "$DIST" "$work/context"
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)

for arch in $ARCHES; do
	bin=$DIST/berth_${VERSION}_linux_$arch
	echo "release: $bin"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$bin" ./cmd/berth

	stage=$work/build-$arch
	install -D -m 0755 "$bin" "$stage/rootfs/usr/local/bin/berth"
	release/rootfs.sh "$stage/rootfs"

	img=localhost/berth:$VERSION-linux-$arch
	images+=("$img")
	"${B[@]}" build --quiet --isolation chroot --platform "linux/$arch" --build-context "build=$stage" \
		--build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT" --timestamp "$epoch" --identity-label=false \
		--manifest "$list" -t "$img" -f Dockerfile "$work/context" >/dev/null
	archive=$DIST/berth_${VERSION}_image_linux_$arch.oci.tar
	echo "release: $archive"
	"${B[@]}" push --quiet "$img" "oci-archive:$archive:berth:$VERSION"
	repack "$archive" "berth:$VERSION"
done

archive=$DIST/berth_${VERSION}_image.oci.tar
echo "release: $archive (OCI index: $ARCHES)"
"${B[@]}" manifest push --quiet --all "$list" "oci-archive:$archive:berth:$VERSION"
repack "$archive"

(cd "$DIST" && sha256sum berth_* >SHA256SUMS)
echo "release: $DIST/SHA256SUMS"
ls -l "$DIST"
