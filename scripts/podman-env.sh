# shellcheck shell=bash
# Copied from the team's shared recipes (recipes/podman-env.sh), so a clean checkout (CI) has it. Changed: the file
# lives in a directory of its own (the recipe's copy may differ), and network_backend = "netavark" is pinned, since
# podman 4.3 stays on CNI (no container DNS without the dnsname plugin) when it first ran before netavark was there.
# podman on these machines (Debian 12, root, cgroups v1 "hybrid", no systemd, no Docker engine).
# Source it, don't run it:   . scripts/podman-env.sh      (bash; also from scripts)
# Packages: apt-get install -y podman runc netavark aardvark-dns   (scripts/setup-test-host.sh installs them)
# What it does (instant): writes containers.conf to ${TMPDIR:-/tmp}/ocimirror-podman-env-$UID/ and exports CONTAINERS_CONF:
#   default_ulimits = []      else podman run: "error setting rlimits ... operation not permitted"
#   runtime = "runc"          else crun: "cgroups in hybrid mode not supported"
#   cgroup_manager = "cgroupfs", events_logger = "file"   (no systemd, no journald)
# The file reaches every podman that inherits the variable: podman build, podman-compose, `podman system service`.
# It also defines a `podman` shell function that passes --runtime runc --cgroup-manager cgroupfs explicitly.
# And `podman_pin_bridge NETWORK...`: netavark 1.4 lets a bridge's MAC follow its ports, so when a container joins or
# leaves a network, the containers already on it lose their gateway, and with it DNS (names stop resolving), for up
# to ~45 s (stale ARP). Call it once the network's first container runs (e.g. after starting Harbor on
# harbor_harbor, after `compose up`): the bridge keeps its MAC from then on, until podman deletes the bridge.
# Leaves: that one file. Undo: unset CONTAINERS_CONF; unset -f podman podman_pin_bridge
# Works here: podman run / build (--pull=never) / --network host / user-defined `podman network create` bridges.
(return 0 2>/dev/null) || { echo "source it instead: . $0" >&2; exit 1; }
PODMAN_ENV_DIR=${TMPDIR:-/tmp}/ocimirror-podman-env-$(id -u)
mkdir -p "$PODMAN_ENV_DIR"
cat > "$PODMAN_ENV_DIR/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
export CONTAINERS_CONF="$PODMAN_ENV_DIR/containers.conf"
podman() { command podman --runtime runc --cgroup-manager cgroupfs "$@"; }
podman_pin_bridge() {
  local net br
  for net in "$@"; do
    br=$(command podman network inspect "$net" --format '{{.NetworkInterface}}') || return 1
    if [ ! -e "/sys/class/net/$br" ]; then echo "podman_pin_bridge: $net has no bridge yet (start a container)" >&2; return 1; fi
    ip link set dev "$br" address "$(cat "/sys/class/net/$br/address")"
  done
}
