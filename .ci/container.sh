#!/usr/bin/env bash
# The container image, built and run without any registry, as root:
#   1. podman, runc and mmdebstrap from Debian if missing;
#   2. a Debian 12 base image made with mmdebstrap from the Debian mirror and imported into
#      podman as localhost/coinstaker-base:bookworm (once; kept for later runs);
#   3. deploy/container/Containerfile.local built FROM it with a prebuilt coinstaker binary
#      (target/release/coinstaker, built if missing; COINSTAKER_BINARY=<file> for another);
#   4. the image run with --network host against a verusd-sim on the host: /healthz answers
#      200 "ok", `coinstaker healthcheck` inside the container exits 0 (the image's
#      HEALTHCHECK, through `podman healthcheck run`), and the pool follows blocks mined
#      after it started (GraphQL from the host);
#   5. on exit the container, its volume, the test image and the simulator are removed.
# (Without systemd, podman cannot schedule the periodic HEALTHCHECK and says so; the check is
# run once by hand instead, and that message is filtered out.)
#
# Run from anywhere:   bash .ci/container.sh
# Why runc and the ulimits: on this kind of machine (cgroups v1 with a unified hierarchy, no
# CAP_SYS_RESOURCE) crun refuses "cgroups in hybrid mode", and the runtime may not raise
# RLIMIT_NOFILE/NPROC to podman's defaults. Elsewhere they are harmless.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
binary=${COINSTAKER_BINARY:-$target/release/coinstaker}
sim=${VERUSD_SIM_BIN:-$target/debug/verusd-sim}
base=localhost/coinstaker-base:bookworm
image=localhost/coinstaker:ci-$$
name=coinstaker-ci-$$
volume=coinstaker-ci-$$
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n== %s\n' "$*"; }
fail() { echo "container: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root"

run_opts=(--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    podman logs "$name" 2>/dev/null | tail -n 30 >&2 || true
    [ -f "$tmp/sim.log" ] && tail -n 20 "$tmp/sim.log" >&2
  fi
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Tools ------------------------------------------------------------------------------------
log "tools"
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" uidmap slirp4netns fuse-overlayfs ca-certificates >/dev/null
fi
podman --version
if [ ! -x "$binary" ]; then
  echo "building $binary"
  cargo build --release --locked --bin coinstaker
fi
[ -x "$sim" ] || cargo build --bin verusd-sim

# --- 2. The base image ---------------------------------------------------------------------------
log "base image"
if ! podman image exists "$base"; then
  mmdebstrap --variant=minbase --include=ca-certificates bookworm "$tmp/base.tar"
  podman import "$tmp/base.tar" "$base" >/dev/null
  rm -f "$tmp/base.tar"
fi
podman image ls "$base"

# --- 3. The image ----------------------------------------------------------------------------------
log "build deploy/container/Containerfile.local"
mkdir "$tmp/context"
cp "$binary" "$tmp/context/coinstaker"
podman build --quiet --format docker "${run_opts[@]}" --build-arg "BASE=$base" \
  -f deploy/container/Containerfile.local -t "$image" "$tmp/context" >/dev/null
podman image ls "$image"

# --- 4. Run it against verusd-sim ------------------------------------------------------------------
log "run the image"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rpc_port=$(free_port); zmq_port=$(free_port); http_port=$(free_port)
rpc_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
"$sim" --rpc-bind "127.0.0.1:$rpc_port" --zmq-bind "tcp://127.0.0.1:$zmq_port" \
  --rpc-user user --rpc-password "$rpc_password" --premine 5 >"$tmp/sim.log" 2>&1 &
pids+=($!)
export SIM_URL="http://127.0.0.1:$rpc_port/" SIM_PASSWORD="$rpc_password" POOL_URL="http://127.0.0.1:$http_port"
cat >"$tmp/call.py" <<'EOF'
import base64, json, os, sys, time, urllib.request
def rpc(method, params=()):
    auth = base64.b64encode(f"user:{os.environ['SIM_PASSWORD']}".encode()).decode()
    req = urllib.request.Request(os.environ["SIM_URL"], json.dumps({"method": method, "params": list(params), "id": 1}).encode(),
                                 {"Authorization": f"Basic {auth}"})
    return json.load(urllib.request.urlopen(req, timeout=10))["result"]
def gql(query):
    req = urllib.request.Request(os.environ["POOL_URL"] + "/graphql", json.dumps({"query": query}).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=10))["data"]
def until(what, probe, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.3)
    sys.exit(f"timed out waiting for {what}")
EOF
export PYTHONPATH="$tmp"
python3 -c 'from call import *; until("verusd-sim", lambda: rpc("getblockcount") is not None, 20)'
state=$(python3 -c 'import json; from call import rpc; print(json.dumps(rpc("sim_state")))')
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$state" "$1"; }
chain=$(field name)
cat >"$tmp/coinstaker.toml" <<EOF
[database]
url = "sqlite:///var/lib/coinstaker/coinstaker.db?mode=rwc"
[http]
bind = "127.0.0.1:$http_port"
[[chain]]
name = "$chain"
rpc_url = "http://127.0.0.1:$rpc_port/"
rpc_user = "user"
zmq_block_url = "tcp://127.0.0.1:$zmq_port"
poll_interval_secs = 1
start_height = 1
pool_identity = "$(field poolidentity)"
pool_primary_address = "$(field poolprimaryaddress)"
maturity = 100
EOF
chmod 644 "$tmp/coinstaker.toml"
podman volume create "$volume" >/dev/null
podman run -d --name "$name" "${run_opts[@]}" --network host \
  -v "$tmp/coinstaker.toml:/etc/coinstaker/coinstaker.toml:ro" -v "$volume:/var/lib/coinstaker" \
  -e "COINSTAKER_CHAIN__${chain}__RPC_PASSWORD=$rpc_password" -e RUST_LOG=info "$image" \
  2> >(grep -v "unable to get systemd connection" >&2) >/dev/null
python3 - <<'EOF'
import json, urllib.request
from call import until
def healthy():
    body = json.load(urllib.request.urlopen(__import__("os").environ["POOL_URL"] + "/healthz", timeout=5))
    return body if body["status"] == "ok" else None
body = until("GET /healthz to answer 200 ok", healthy, 60)
print("GET /healthz:", json.dumps(body)[:200])
EOF
podman exec "$name" coinstaker healthcheck --config /etc/coinstaker/coinstaker.toml >/dev/null \
  || fail "coinstaker healthcheck inside the container did not exit 0"
echo "coinstaker healthcheck inside the container: exit 0"
podman healthcheck run "$name" || fail "the image's HEALTHCHECK failed"
echo "podman healthcheck run: healthy"
podman exec "$name" id
python3 - <<'EOF'
from call import gql, rpc, until
rpc("sim_generate", [7])
tip = rpc("getblockcount")
until(f"the pool to process height {tip}", lambda: gql("{ pool { processedHeight } }")["pool"]["processedHeight"] >= tip, 60)
print(f"the containerised pool followed the chain to height {tip}")
EOF
echo "container: ok"
