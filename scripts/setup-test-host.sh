#!/usr/bin/env bash
# Installs the system packages the test suite runs for real: CNCF Distribution (the upstream), skopeo,
# containerd (ctr + CRI), podman, htpasswd, openssl, docker-compose (only to validate the compose file), Ceph
# (mon, OSD, radosgw: the S3 store's real S3), redis-server (cluster coordination), zstd (makes the .tar.zst archives the import
# tests read), ab and curl (npm run bench).
# Debian 12 / Ubuntu; needs root (uses sudo when not root). Safe to run again.
set -euo pipefail
PKGS=(docker-registry skopeo containerd podman apache2-utils openssl docker-compose ca-certificates ceph-mon ceph-osd radosgw redis-server curl procps zstd)
# The container tests (ops-image, ops-compose, ops-status-page): podman's netavark + aardvark-dns (container DNS)
# and runc, debootstrap (the offline base image, built below), podman-compose, cfssl (the Harbor stand-in's CA, as in
# the seed tutorial) and Debian's chromium (the status page in a real browser).
PKGS+=(runc netavark aardvark-dns iptables debootstrap podman-compose golang-cfssl chromium)
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-test-host: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-test-host: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's postinst may start a registry, containerd or redis under systemd; the tests start their own on loopback
# (scripts/services/).
for bin in docker-registry skopeo containerd ctr podman htpasswd ab openssl ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool ceph curl ps redis-server redis-cli zstd; do command -v "$bin" >/dev/null || { echo "setup-test-host: $bin missing after install" >&2; exit 1; }; done
# netavark lives in /usr/lib/podman, off the PATH.
for bin in runc debootstrap docker-compose cfssl cfssljson chromium /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns; do
  command -v "$bin" >/dev/null || { echo "setup-test-host: $bin missing after install" >&2; exit 1; }
done
# The image tests build FROM node:20-bookworm-slim with no registry to pull it from: made once (1-2 min), then reused.
$SUDO bash "$(dirname "$0")/make-node-base-image.sh"
echo "setup-test-host: ok"
