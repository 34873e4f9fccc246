#!/usr/bin/env bash
# Copied unchanged from the team's shared recipes (recipes/make-node-base-image.sh),
# so a clean checkout (CI) can build the base image; scripts/setup-test-host.sh runs it.
# Builds a local stand-in for docker.io/library/node:20-bookworm-slim, so that a Dockerfile saying
# `FROM node:20-bookworm-slim` builds with no Docker Hub:  podman build --pull=never -t NAME DIR
# Made of: debootstrap --variant=minbase bookworm (Debian archive) + this machine's own Node.js 20
# (/usr/bin/node, npm/npx/corepack under /usr/lib/node_modules, same paths as here) + user node (uid/gid 1000,
# home /home/node, as in the official image) + this machine's CA bundle (NODE_EXTRA_CA_CERTS points at it, so
# `RUN npm ci` reaches the npm registry as the host does). CMD ["node"]; no entrypoint script.
# Needs: root; apt-get install -y debootstrap podman runc; the nodejs 20 package installed on this machine.
# Usage: make-node-base-image.sh            (does nothing if the image exists; FORCE=1 rebuilds)
#   env: TAG (docker.io/library/node:20-bookworm-slim)  MIRROR (default: the first Debian archive URI in this machine's apt sources)
# Takes: 1-2 min (mostly debootstrap downloading). Leaves: the image (236 MB) in podman's storage; the temporary
# rootfs is deleted. Undo: podman rmi docker.io/library/node:20-bookworm-slim
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
. "$HERE/podman-env.sh"
TAG=${TAG:-docker.io/library/node:20-bookworm-slim}
# The Debian archive this machine's apt already uses (first URIs line of a deb822 .sources file, else sources.list).
apt_mirror() {
  local u
  u=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$u" ] || u=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "$u"
}
MIRROR=${MIRROR:-$(apt_mirror)}
[ -n "$MIRROR" ] || { echo "no Debian archive found in the apt sources: set MIRROR" >&2; exit 1; }
if [ -z "${FORCE:-}" ] && podman image exists "$TAG"; then echo "$TAG already present (FORCE=1 rebuilds)"; exit 0; fi
NODE_V=$(node --version); [[ $NODE_V == v20.* ]] || echo "warning: host node is $NODE_V, not 20.x" >&2
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # e.g. /usr/lib/node_modules/npm
T0=$(date +%s)
WORK=$(mktemp -d /var/tmp/node-base.XXXXXX); ROOT=$WORK/rootfs
trap 'rm -rf --one-file-system "$WORK"' EXIT
debootstrap --variant=minbase --include=libstdc++6 bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
(cd "$ROOT" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* dev/* tmp/*)
# node + the npm that ships with it (and npx, corepack), at the same paths as on this machine
cp -a "$(command -v node)" "$ROOT/usr/bin/node"
mkdir -p "$ROOT$(dirname "$NPM_DIR")"
cp -a "$NPM_DIR" "$ROOT$NPM_DIR"
if [ -d "$(dirname "$NPM_DIR")/corepack" ]; then cp -a "$(dirname "$NPM_DIR")/corepack" "$ROOT$(dirname "$NPM_DIR")/"; fi
for b in npm npx corepack; do if [ -L "/usr/bin/$b" ]; then cp -P "/usr/bin/$b" "$ROOT/usr/bin/$b"; fi; done
ln -s /usr/bin/node "$ROOT/usr/local/bin/node"   # the official image keeps node in /usr/local/bin
# this machine's CA bundle, so that `npm ci` in a build trusts the same CAs as npm on the host does
mkdir -p "$ROOT/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
chroot "$ROOT" groupadd --gid 1000 node
chroot "$ROOT" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
chroot "$ROOT" /usr/bin/node -e 0   # fails here if a library is missing
podman rmi "$TAG" >/dev/null 2>&1 || true   # FORCE=1: drop the old one unless something still uses it
tar -C "$ROOT" --numeric-owner -cf - . | podman import -q \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_V#v}" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' --change 'CMD ["node"]' - "$TAG" >/dev/null
echo "$TAG built in $(( $(date +%s) - T0 )) s: node $NODE_V, npm $(npm --version)"
