#!/bin/sh
# The root filesystem of berth's image, staged into DIR: what the Dockerfile's build stage runs and what
# `make release` runs before buildah builds the same Dockerfile's final stage from it. berth itself goes to
# DIR/usr/local/bin/berth (the caller builds it there first).
#
#   release/rootfs.sh DIR [CA_BUNDLE]     CA_BUNDLE defaults to Debian's /etc/ssl/certs/ca-certificates.crt
#
#   /usr/local/bin/berth                  0755
#   /etc/ssl/certs/ca-certificates.crt    0644   the TLS roots Go reads: AWS and Consul over https
#   /tmp                                  1777
#   /var/run                              0755   berth's control socket (/var/run/berth.sock): `berth health`
set -eu
dir=${1:?usage: release/rootfs.sh DIR [CA_BUNDLE]}
ca=${2:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -x "$dir/usr/local/bin/berth" ]; then
	echo "release/rootfs.sh: $dir/usr/local/bin/berth is missing: build berth there first" >&2
	exit 1
fi
if [ ! -s "$ca" ]; then
	echo "release/rootfs.sh: no CA bundle at $ca (Debian: apt-get install ca-certificates)" >&2
	exit 1
fi
mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/var/run"
cp "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$dir/usr/local/bin/berth" "$dir/var/run" "$dir/usr" "$dir/usr/local" "$dir/usr/local/bin" \
	"$dir/etc" "$dir/etc/ssl" "$dir/etc/ssl/certs" "$dir/var"
chmod 0644 "$dir/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$dir/tmp"
