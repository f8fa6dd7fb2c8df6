#!/usr/bin/env bash
# The operator's kit (deploy/), checked end to end. Run as root from anywhere, after
# `cargo build --workspace` (or `cargo test --workspace`):   bash .ci/operator-kit.sh
#
#  1. tools: systemd-analyze (package systemd), python3, adduser; promtool and prometheus are
#     taken out of Debian's `prometheus` package without installing it (installing it would
#     start a Prometheus server); cargo-deb from crates.io if missing;
#  2. deploy/coinstaker.service: `systemd-analyze verify` (only the not-yet-installed binary
#     may be reported) and its exposure with `systemd-analyze security --offline`;
#  3. deploy/examples/coinstaker.toml: parsed and migrated by `coinstaker migrate` (database
#     overridden by COINSTAKER_DATABASE__URL, the RPC password by the environment);
#  4. deploy/prometheus: `promtool check rules` and `promtool test rules`;
#  5. deploy/grafana: valid JSON, and every query parses;
#  6. the Debian package: `cargo deb` ([package.metadata.deb] in Cargo.toml), `dpkg -i`, the
#     files, the user, `systemd-analyze verify` of the installed unit;
#  7. the installed /usr/bin/coinstaker serves, as the coinstaker user, an edited copy of
#     /etc/coinstaker/coinstaker.toml pointing at a verusd-sim, and
#     `/usr/bin/coinstaker healthcheck` exits 0 against it;
#  8. the metrics: the chain is driven (stakes, maturity, a payment, failed RPC calls, missed
#     ZMQ notifications); every metric the rules and the dashboard use is in /metrics; a
#     Prometheus scrapes it with the rules loaded: every rule evaluates, every dashboard query
#     returns series;
#  9. `dpkg --purge coinstaker`; on exit every process it started is stopped and the package
#     purged (the trap), whatever happened.
#
# DEB_PROFILE=release builds an optimised package (a release build, several minutes); the
# default, dev, packages the debug binary that `cargo build` already made, to check the
# packaging quickly. COINSTAKER_DEB=<file.deb> installs that package instead of building one.
# VERUSD_SIM_BIN overrides target/debug/verusd-sim. KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
profile=${DEB_PROFILE:-dev}
sim=${VERUSD_SIM_BIN:-$target/debug/verusd-sim}
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n== %s\n' "$*"; }
fail() { echo "operator-kit: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs and purges a Debian package)"

tmp=$(mktemp -d)
chmod 711 "$tmp"
pids=()
installed_here=0
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$installed_here" = 1 ] && dpkg-query -W -f='${Status}' coinstaker 2>/dev/null | grep -q installed; then
    dpkg --purge coinstaker >/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    for f in "$tmp"/*.log; do
      [ -f "$f" ] || continue
      echo "--- last lines of $f" >&2
      tail -n 30 "$f" >&2
    done
  fi
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Tools ----------------------------------------------------------------------------------
log "tools"
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# promtool and prometheus from Debian's package, unpacked into the target directory.
tools="$target/operator-kit"
if [ ! -x "$tools/usr/bin/promtool" ] || [ ! -x "$tools/usr/bin/prometheus" ]; then
  echo "unpacking Debian's prometheus package into $tools"
  mkdir -p "$tools" "$tmp/apt"
  (cd "$tmp/apt" && { apt-get download prometheus >/dev/null 2>&1 \
     || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
  dpkg-deb -x "$tmp"/apt/prometheus_*.deb "$tools"
fi
promtool="$tools/usr/bin/promtool"
prometheus="$tools/usr/bin/prometheus"
"$promtool" --version | head -n1
if ! command -v cargo-deb >/dev/null 2>&1 && [ -z "${COINSTAKER_DEB:-}" ]; then
  echo "installing cargo-deb"
  cargo install cargo-deb --locked --version '^3.8'
fi
for bin in "$target/debug/coinstaker" "$sim"; do
  if [ ! -x "$bin" ]; then
    echo "building the debug binaries"
    cargo build --bin coinstaker --bin verusd-sim
    break
  fi
done

# --- 2. The systemd unit ----------------------------------------------------------------------------
log "systemd unit (source)"
# Before the package is installed, the only complaint allowed is the missing binary.
if ! systemd-analyze verify deploy/coinstaker.service >"$tmp/verify.out" 2>&1; then
  if grep -v '/usr/bin/coinstaker is not executable' "$tmp/verify.out" | grep -q .; then
    cat "$tmp/verify.out" >&2
    fail "systemd-analyze verify deploy/coinstaker.service"
  fi
fi
systemd-analyze security --offline=true deploy/coinstaker.service 2>/dev/null | tail -n1
exposure=$(systemd-analyze security --offline=true deploy/coinstaker.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for coinstaker.service: \([0-9.]*\).*/\1/p')
python3 -c "import sys; sys.exit(0 if float('$exposure') <= 2.0 else 1)" \
  || fail "the unit's exposure level $exposure is above 2.0"

# --- 3. The example configuration ------------------------------------------------------------------
log "deploy/examples/coinstaker.toml"
COINSTAKER_DATABASE__URL="sqlite://$tmp/example.db?mode=rwc" COINSTAKER_CHAIN__VRSC__RPC_PASSWORD=example \
  "$target/debug/coinstaker" migrate --config deploy/examples/coinstaker.toml
grep -q '^defaultid=' deploy/examples/VRSC.conf && grep -q '^idindex=1' deploy/examples/VRSC.conf \
  && grep -q '^zmqpubhashblock=tcp://127.0.0.1:28332' deploy/examples/VRSC.conf \
  || fail "deploy/examples/VRSC.conf lacks defaultid, idindex or zmqpubhashblock"

# --- 4. Prometheus rules ------------------------------------------------------------------------------
log "Prometheus rules"
"$promtool" check rules deploy/prometheus/coinstaker-rules.yml
(cd deploy/prometheus && "$promtool" test rules coinstaker-rules.test.yml)

# --- 5. The Grafana dashboard ---------------------------------------------------------------------------
log "Grafana dashboard"
python3 -m json.tool deploy/grafana/coinstaker-dashboard.json >/dev/null
# Every panel query, as recording rules, parsed by promtool (Grafana's variables replaced).
python3 - deploy/grafana/coinstaker-dashboard.json "$tmp/dashboard-queries" <<'EOF'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append(t["expr"].replace("$__rate_interval", "1m").replace('"$chain"', '".*"'))
walk(dashboard["panels"])
assert exprs, "no queries in the dashboard"
open(sys.argv[2] + ".txt", "w").write("\n".join(exprs) + "\n")
with open(sys.argv[2] + ".yml", "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} queries")
EOF
"$promtool" check rules "$tmp/dashboard-queries.yml" >/dev/null

# --- 6. The Debian package --------------------------------------------------------------------------
log "Debian package"
if dpkg-query -W -f='${Status}' coinstaker 2>/dev/null | grep -q installed; then
  fail "a coinstaker package is already installed here: purge it first (dpkg --purge coinstaker)"
fi
if [ -n "${COINSTAKER_DEB:-}" ]; then
  deb=$COINSTAKER_DEB
else
  mkdir -p "$tmp/deb"
  quiet_dev() { grep -v "dev profile is not supported\|cargo-deb is for making releases\|To enable debug symbols set" || true; }
  cargo deb --profile "$profile" --locked -o "$tmp/deb/" 2>&1 | quiet_dev
  deb=$(ls "$tmp"/deb/coinstaker_*.deb)
fi
dpkg-deb -I "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/\1:/p'
installed_here=1
dpkg -i "$deb"
for f in /usr/bin/coinstaker /etc/coinstaker/coinstaker.toml /usr/share/doc/coinstaker/README.md \
         /usr/share/doc/coinstaker/examples/VRSC.conf; do
  [ -e "$f" ] || fail "$f was not installed"
done
unit=$(dpkg -L coinstaker | grep '/systemd/system/coinstaker.service$')
echo "unit: $unit"
systemd-analyze verify "$unit"
getent passwd coinstaker >/dev/null || fail "no coinstaker user"
[ "$(stat -c '%U:%G %a' /var/lib/coinstaker)" = "coinstaker:coinstaker 750" ] || fail "/var/lib/coinstaker: $(stat -c '%U:%G %a' /var/lib/coinstaker)"
[ "$(stat -c '%U:%G %a' /etc/coinstaker/coinstaker.toml)" = "root:coinstaker 640" ] || fail "/etc/coinstaker/coinstaker.toml: $(stat -c '%U:%G %a' /etc/coinstaker/coinstaker.toml)"
dpkg-query -W -f='${Conffiles}\n' coinstaker | grep -q /etc/coinstaker/coinstaker.toml || fail "the config is not a conffile"
/usr/bin/coinstaker --version

# --- 7. The installed binary serves ----------------------------------------------------------------------
log "the installed coinstaker against verusd-sim"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rpc_port=$(free_port); zmq_port=$(free_port); http_port=$(free_port); prom_port=$(free_port)
rpc_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
admin_token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
admin_hash=$(printf '%s' "$admin_token" | sha256sum | cut -d' ' -f1)
"$sim" --rpc-bind "127.0.0.1:$rpc_port" --zmq-bind "tcp://127.0.0.1:$zmq_port" \
  --rpc-user user --rpc-password "$rpc_password" >"$tmp/sim.log" 2>&1 &
pids+=($!)
export SIM_URL="http://127.0.0.1:$rpc_port/" SIM_PASSWORD="$rpc_password" POOL_URL="http://127.0.0.1:$http_port" ADMIN_TOKEN="$admin_token"
# A tiny client: `rpc METHOD [JSON params]` for the simulator, `gql QUERY` for the pool.
cat >"$tmp/call.py" <<'EOF'
import base64, json, os, sys, urllib.request
def rpc(method, params):
    auth = base64.b64encode(f"user:{os.environ['SIM_PASSWORD']}".encode()).decode()
    req = urllib.request.Request(os.environ["SIM_URL"], json.dumps({"method": method, "params": params, "id": 1}).encode(),
                                 {"Authorization": f"Basic {auth}"})
    try:
        body = json.load(urllib.request.urlopen(req, timeout=10))
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("error"):
        sys.exit(f"{method}: {body['error']}")
    return body["result"]
def gql(query):
    req = urllib.request.Request(os.environ["POOL_URL"] + "/graphql", json.dumps({"query": query}).encode(),
                                 {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["ADMIN_TOKEN"]})
    body = json.load(urllib.request.urlopen(req, timeout=30))
    if body.get("errors"):
        sys.exit(f"graphql: {body['errors']}")
    return body["data"]
if __name__ == "__main__":
    kind, what = sys.argv[1], sys.argv[2]
    out = rpc(what, json.loads(sys.argv[3]) if len(sys.argv) > 3 else []) if kind == "rpc" else gql(what)
    print(json.dumps(out))
EOF
rpc() { python3 "$tmp/call.py" rpc "$@"; }
gql() { python3 "$tmp/call.py" gql "$@"; }
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
for _ in $(seq 1 50); do rpc getblockcount >/dev/null 2>&1 && break; sleep 0.2; done
# Stakers outside the pool, so the network's staking supply is not 0 (read when the pool starts
# and every minute).
rpc sim_setexternalsupply '["50000"]' >/dev/null
state=$(rpc sim_state)
chain=$(field "$state" name)
pool_identity=$(field "$state" poolidentity)
pool_address=$(field "$state" poolprimaryaddress)

# An edited copy of the installed configuration, readable by the coinstaker user.
run="$tmp/run"
install -d -o coinstaker -g coinstaker -m 0750 "$run"
config="$run/coinstaker.toml"
python3 - /etc/coinstaker/coinstaker.toml "$config" <<EOF
import re, sys
text = open(sys.argv[1]).read()
edits = [
    (r'(?m)^url = .*$', 'url = "sqlite://$run/coinstaker.db?mode=rwc"'),
    (r'(?m)^bind = .*$', 'bind = "127.0.0.1:$http_port"'),
    (r'(?m)^admin_token_sha256 = .*$', 'admin_token_sha256 = ["$admin_hash"]'),
    (r'(?m)^name = "VRSC"$', 'name = "$chain"\nstart_height = 1\npoll_interval_secs = 1'),
    (r'(?m)^rpc_url = .*$', 'rpc_url = "http://127.0.0.1:$rpc_port/"'),
    (r'(?m)^rpc_user = .*$', 'rpc_user = "user"'),
    (r'(?m)^zmq_block_url = .*$', 'zmq_block_url = "tcp://127.0.0.1:$zmq_port"'),
    (r'(?m)^pool_identity = .*$', 'pool_identity = "$pool_identity"'),
    (r'(?m)^pool_primary_address = .*$', 'pool_primary_address = "$pool_address"'),
    (r'(?m)^maturity = .*$', 'maturity = 100'),
    (r'(?m)^min_payout = .*$', 'min_payout = "0.5"'),
    (r'(?m)^payout_interval_secs = .*$', 'payout_interval_secs = 1'),
]
for pattern, replacement in edits:
    text, n = re.subn(pattern, replacement, text)
    if n != 1:
        sys.exit(f"{pattern!r} matched {n} lines of the installed configuration, not 1")
open(sys.argv[2], "w").write(text)
EOF
chown coinstaker:coinstaker "$config"
chmod 0640 "$config"
# As the unit runs it: the coinstaker user, the password from the environment.
runuser -u coinstaker -- env "COINSTAKER_CHAIN__${chain}__RPC_PASSWORD=$rpc_password" \
  RUST_LOG=info MALLOC_ARENA_MAX=2 /usr/bin/coinstaker serve --config "$config" >"$tmp/pool.log" 2>&1 &
pids+=($!)
healthy=0
for _ in $(seq 1 100); do
  if runuser -u coinstaker -- env "COINSTAKER_CHAIN__${chain}__RPC_PASSWORD=$rpc_password" \
       /usr/bin/coinstaker healthcheck --config "$config" >"$tmp/healthcheck.out" 2>&1; then
    healthy=1
    break
  fi
  sleep 0.3
done
[ "$healthy" = 1 ] || { cat "$tmp/healthcheck.out" >&2; fail "coinstaker healthcheck did not exit 0"; }
echo "/usr/bin/coinstaker healthcheck: exit 0 against $POOL_URL ($(cat "$tmp/healthcheck.out" | head -c 200))"

# --- 8. Metrics, rules and dashboard against the live server ----------------------------------------------
log "metrics, rules and dashboard queries against the live server"
cat >"$tmp/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["$root/deploy/prometheus/coinstaker-rules.yml"]
scrape_configs:
  - job_name: coinstaker
    static_configs: [{ targets: ["127.0.0.1:$http_port"] }]
EOF
"$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)

# Drive the chain: a subscriber (delay-locked, separate authorities) joins, stakes, its stake
# matures and it is paid; daemon calls fail; ZMQ notifications are lost.
OPERATOR_KIT_TMP="$tmp" python3 - <<'EOF'
import hashlib, os, sys, time
sys.path.insert(0, os.environ["OPERATOR_KIT_TMP"])
from call import rpc, gql
def r_address(seed):
    sha = lambda b: hashlib.sha256(b).digest()
    payload = bytes([60]) + sha(seed.encode())[:20]
    n = int.from_bytes(payload + sha(sha(payload))[:4], "big")
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    text = ""
    while n:
        n, d = divmod(n, 58)
        text = alphabet[d] + text
    return text
def caught_up():
    tip = rpc("getblockcount", [])
    for _ in range(300):
        if gql("{ pool { processedHeight } }")["pool"]["processedHeight"] >= tip:
            return tip
        time.sleep(0.2)
    sys.exit(f"the pool did not reach height {tip}")
state = rpc("sim_state", [])
revoke = rpc("sim_registeridentity", [{"name": "kit-revoke"}])["identityaddress"]
recover = rpc("sim_registeridentity", [{"name": "kit-recover"}])["identityaddress"]
member = rpc("sim_registeridentity", [{"name": "kit", "primaryaddresses": [r_address("kit-key"), state["poolprimaryaddress"]],
                                       "locked": True, "timelock": 1440, "revocationauthority": revoke, "recoveryauthority": recover}])["identityaddress"]
rpc("sim_fund", [member, "1000"])
rpc("sim_fund", [state["poolidentity"], "10"])
rpc("sim_generate", [160])
caught_up()
rpc("sim_stake", [member])
rpc("sim_generate", [101])
caught_up()
for _ in range(60):
    gql("mutation { runPayouts { id } }")
    time.sleep(0.3)
    rpc("sim_generate", [1])
    if gql('{ payments(first: 1) { nodes { status } } }')["payments"]["nodes"]:
        break
else:
    sys.exit("no payment was made")
rpc("sim_failnext", [{"method": "getblockcount", "count": 3}])
rpc("sim_dropnotifications", [2])
rpc("sim_generate", [3])
time.sleep(4)
rpc("sim_generate", [2])
caught_up()
print("chain driven to height", rpc("getblockcount", []))
EOF
sleep 5
curl_metrics() { python3 -c 'import urllib.request, sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$POOL_URL/metrics"; }
curl_metrics >"$tmp/metrics.txt"
# Every metric name the rules and the dashboard use has samples.
python3 - "$tmp/metrics.txt" deploy/prometheus/coinstaker-rules.yml "$tmp/dashboard-queries.txt" <<'EOF'
import re, sys
exposed = {line.split("{")[0].split(" ")[0] for line in open(sys.argv[1]) if line.startswith("coinstaker_")}
used = set()
for path in sys.argv[2:]:
    used |= set(re.findall(r"\bcoinstaker_[a-z_]+", open(path).read()))
# A histogram is exposed as <name>_bucket, _sum and _count.
missing = sorted(n for n in used if n not in exposed and n + "_bucket" not in exposed)
print(f"{len(used)} metric names used by the rules and the dashboard; {len(exposed)} exposed")
if missing:
    sys.exit(f"used but not in /metrics: {missing}")
EOF
# Prometheus: the rules evaluate without error; every dashboard query returns series.
python3 - "http://127.0.0.1:$prom_port" "$tmp/dashboard-queries.txt" <<'EOF'
import json, sys, time, urllib.parse, urllib.request
base, queries = sys.argv[1], [q for q in open(sys.argv[2]).read().splitlines() if q]
def get(path):
    return json.load(urllib.request.urlopen(base + path, timeout=10))
for _ in range(100):
    try:
        if get("/api/v1/query?query=up")["data"]["result"]:
            break
    except Exception:
        pass
    time.sleep(0.3)
time.sleep(3)
groups = get("/api/v1/rules")["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
if not rules or bad:
    sys.exit(f"rules: {len(rules)} loaded, unhealthy: {bad}")
firing = [r["name"] for r in rules if r["state"] != "inactive"]
print(f"{len(rules)} rules evaluate; pending or firing: {firing or 'none'}")
empty = []
for q in queries:
    res = get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    if res["status"] != "success" or not res["data"]["result"]:
        empty.append(q)
if empty:
    sys.exit("dashboard queries without data:\n  " + "\n  ".join(empty))
print(f"all {len(queries)} dashboard queries return series")
EOF

# --- 9. Purge ------------------------------------------------------------------------------------------------
log "purge"
kill "${pids[@]}" 2>/dev/null || true
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()
dpkg --purge coinstaker
installed_here=0
[ ! -e /usr/bin/coinstaker ] && [ ! -e "$unit" ] && [ ! -e /etc/coinstaker/coinstaker.toml ] \
  || fail "files left after the purge"
echo "operator kit: ok"
