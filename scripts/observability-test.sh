#!/usr/bin/env bash
# The observability checks: rules, dashboards, deployment files and a live scrape (issue 11).
#
#   1. promtool check rules / promtool test rules on dashboards/rules/ (every alert fires)
#   2. python3 dashboards/generate.py --check (committed JSON and rules are what the script
#      writes; panel ids unique; every metric a query names is in model/src/metrics.rs;
#      KAFKA_ONLY agrees with the catalogue's fed_in; every runbook anchor exists)
#   3. deploy/: the example configs pass check-config; the compose file is validated with
#      `docker compose config --quiet`, else Debian's `docker-compose config -q` (installed
#      when missing; never skipped); deploy/k8s against the Kubernetes schemas
#      (kubernetes-validate, or a structural check when it cannot be installed); then
#      scripts/lib/deploy-references.py: every file, config and port compose and k8s
#      reference exists and agrees, and the ConfigMap's config passes check-config
#   4. a files-mode `riskwatch run` on a generated book (2000 customers x 30 days) with a
#      state directory (--state DIR --init-state) and one [[webhook]] endpoint, a real
#      `riskwatch receive` on loopback (its secret from the environment, never the config),
#      serving /metrics on a free loopback port (--metrics-linger keeps it up after the run).
#      The scrape must show committed checkpoints, delivered webhooks and the level, case and
#      ring gauges (scripts/lib/fed-metrics.py); a Prometheus of its own on loopback scrapes
#      it every second (temp config and TSDB)
#   5. through Prometheus's HTTP API: every dashboard panel query and every rule expression
#      (comparisons turned into `bool` ones, so a healthy run still returns its series) must
#      return at least one series; only the queries on Kafka-only metrics (`KAFKA_ONLY` in
#      dashboards/generate.py: lag, watermark delay, latency, the Kafka source and sink) may
#      return none
#   6. promtool check metrics on the live /metrics, /health and /ready answer 200, and no
#      customer id of the book appears in the scrape
#
# Installs Debian's prometheus package when promtool or prometheus is missing, and Debian's
# docker-compose when neither `docker compose` nor `docker-compose` exists (needs root, as in
# CI). Everything listens on 127.0.0.1; everything it starts is killed on exit.
# Bounded: about a minute after the build. Needs the release binary (cargo build --release);
# BIN overrides its path. KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/riskwatch}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-obs.XXXXXX")
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() { echo "observability-test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: until URL answers 200.
wait_http() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

[ -x "$BIN" ] || fail "no binary at $BIN (cargo build --release first)"

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  step "installing Debian's prometheus package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The Debian package starts a service on :9090 where systemd runs; this script never uses it.

step "promtool check rules"
promtool check rules dashboards/rules/riskwatch.rules.yml
step "promtool test rules"
(cd dashboards/rules && promtool test rules tests.yml)
step "dashboards --check"
python3 dashboards/generate.py --check
# The catalogue the binary prints is the one the dashboards are checked against.
"$BIN" metrics-catalogue --names >"$WORK/catalogue.txt"
grep -q '^riskwatch_input_events_total counter$' "$WORK/catalogue.txt" \
  || fail "riskwatch metrics-catalogue does not list riskwatch_input_events_total"

step "deploy: example configs pass check-config"
for f in deploy/config/examples/*.toml; do
  "$BIN" check-config --config "$f" >/dev/null || fail "riskwatch check-config --config $f"
  echo "  $f ok"
done
step "deploy: compose file"
# Never skipped: the plugin when it exists, else Debian's docker-compose (1.29, which is why
# the file has no top-level name:; -p names the project).
if docker compose version >/dev/null 2>&1; then
  docker compose -p riskwatch -f deploy/compose.yaml config --quiet || fail "docker compose config"
  echo "  deploy/compose.yaml ok (docker compose)"
else
  if ! command -v docker-compose >/dev/null; then
    [ "$(id -u)" = 0 ] \
      || fail "neither docker compose nor docker-compose is installed (as root: apt-get install -y docker-compose)"
    step "installing Debian's docker-compose package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    command -v docker-compose >/dev/null || fail "docker-compose did not install"
  fi
  docker-compose -p riskwatch -f deploy/compose.yaml config -q || fail "docker-compose config"
  echo "  deploy/compose.yaml ok (docker-compose $(docker-compose version --short 2>/dev/null))"
fi
step "deploy: Kubernetes manifests"
if ! command -v kubernetes-validate >/dev/null; then
  python3 -m pip install -q kubernetes-validate >/dev/null 2>&1 || true
fi
if command -v kubernetes-validate >/dev/null; then
  # Offline: the schemas ship with the package.
  (cd deploy/k8s && kubernetes-validate -k 1.30.0 --strict --quiet \
    configmap.yaml service.yaml statefulset.yaml pdb.yaml secret.example.yaml) \
    || fail "kubernetes-validate deploy/k8s"
  echo "  deploy/k8s valid against the Kubernetes 1.30 schemas"
else
  echo "  kubernetes-validate unavailable: structural check only"
  python3 scripts/lib/k8s-structure.py deploy/k8s || fail "deploy/k8s structure"
fi
step "deploy: every file, config and port referenced exists and agrees"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml >/dev/null 2>&1 || true
python3 scripts/lib/deploy-references.py deploy --bin "$BIN" || fail "deploy references"

step "a webhook receiver"
# The endpoint's secret comes from the environment, never the config.
RISKWATCH_OBS_WEBHOOK_SECRET="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export RISKWATCH_OBS_WEBHOOK_SECRET
"$BIN" receive --listen 127.0.0.1:0 --secret-env RISKWATCH_OBS_WEBHOOK_SECRET \
  --out "$WORK/received.ndjson" >"$WORK/receiver.addr" 2>"$WORK/receiver.log" &
PIDS+=("$!")
RECEIVER=
for ((i = 0; i < 100; i++)); do
  RECEIVER=$(grep -oE '127\.0\.0\.1:[0-9]+' "$WORK/receiver.addr" | head -1 || true)
  [ -n "$RECEIVER" ] && break
  sleep 0.1
done
[ -n "$RECEIVER" ] || fail "riskwatch receive did not start (see $WORK/receiver.log)"
echo "  riskwatch receive on $RECEIVER"

step "a files-mode run with a state directory and a webhook, serving /metrics"
"$BIN" gen --customers 2000 --days 30 --out "$WORK/book" >"$WORK/gen.log" 2>&1 \
  || fail "riskwatch gen (see $WORK/gen.log)"
# A generated book is clean: two bad records give the reject panels and rules data.
printf '%s\n' '{"not json' \
  '{"event_id":"bad-1","customer_id":"C0000001","ts":1767225600000}' \
  >>"$WORK/book/transactions.ndjson"
cat >"$WORK/riskwatch.toml" <<CFG
[run]
mode = "files"
input_dir = "$WORK/book"
output_dir = "$WORK/out"

[[webhook]]
name = "collections"
url = "http://$RECEIVER/hooks/riskwatch"
events = ["alert.raised", "decision.*", "case.*"]
secret_env = "RISKWATCH_OBS_WEBHOOK_SECRET"
backoff_initial = "50ms"
backoff_max = "1s"
CFG
"$BIN" check-config --config "$WORK/riskwatch.toml" >"$WORK/check-config.log" 2>&1 \
  || { cat "$WORK/check-config.log"; fail "the test's config does not pass check-config"; }
RW_PORT=$(free_port)
"$BIN" run --config "$WORK/riskwatch.toml" --workers 2 --state "$WORK/state" --init-state \
  --metrics-addr "127.0.0.1:$RW_PORT" --metrics-linger 120 >"$WORK/run.log" 2>&1 &
RW_PID=$!
PIDS+=("$RW_PID")
wait_http "http://127.0.0.1:$RW_PORT/health" 60 || fail "/health did not answer (see $WORK/run.log)"
# The run has ended (and added its summary) once its last line is printed.
for ((i = 0; i < 1200; i++)); do
  grep -q '^run (files):' "$WORK/run.log" && break
  kill -0 "$RW_PID" 2>/dev/null || fail "riskwatch run exited early (see $WORK/run.log)"
  sleep 0.1
done
grep -q '^run (files):' "$WORK/run.log" || fail "the files run did not finish in 120 s"
curl -fsS -o /dev/null "http://127.0.0.1:$RW_PORT/ready" || fail "/ready is not 200"

step "the run fed checkpoint, delivery, level, case and ring metrics"
# Deliveries reach /metrics about once a second: retry for up to 30 s.
for ((i = 0; i < 60; i++)); do
  curl -fsS "http://127.0.0.1:$RW_PORT/metrics" >"$WORK/metrics.txt"
  python3 scripts/lib/fed-metrics.py "$WORK/metrics.txt" >/dev/null && break
  sleep 0.5
done
python3 scripts/lib/fed-metrics.py "$WORK/metrics.txt" \
  || fail "the files run with --state and a [[webhook]] did not feed these (see $WORK/metrics.txt)"
received=$(grep -c . "$WORK/received.ndjson" 2>/dev/null || true)
[ "${received:-0}" -gt 0 ] || fail "the receiver accepted no webhook event (see $WORK/receiver.log)"
echo "  the receiver accepted $received events"

step "promtool check metrics"
# Lint findings are printed; only a parse error fails (promtool exits 1 on lint findings too).
if ! promtool check metrics <"$WORK/metrics.txt" >"$WORK/lint.txt" 2>&1; then
  if grep -qiE 'error parsing|text format parsing error' "$WORK/lint.txt"; then
    cat "$WORK/lint.txt"; fail "the /metrics text does not parse"
  fi
  sed 's/^/  lint: /' "$WORK/lint.txt"
fi

step "no customer id in the scrape"
python3 - "$WORK/book/customers.ndjson" "$WORK/metrics.txt" <<'PY'
import json, sys
ids = set()
with open(sys.argv[1]) as f:
    for line in f:
        try:
            ids.add(json.loads(line)["customer_id"])
        except Exception:
            pass
text = open(sys.argv[2]).read()
leaked = [i for i in ids if i and i in text]
if not ids:
    sys.exit("no customer ids read from the book")
if leaked:
    sys.exit(f"customer ids in /metrics: {leaked[:5]}")
print(f"  none of {len(ids)} customer ids appears in {len(text)} bytes of /metrics")
PY

step "Prometheus scraping it"
PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/dashboards/rules/riskwatch.rules.yml
scrape_configs:
  - job_name: riskwatch
    static_configs:
      - targets: ["127.0.0.1:$RW_PORT"]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 60 || fail "prometheus did not start (see $WORK/prometheus.log)"
# Enough scrapes for rate() over the test's range (Grafana's $__rate_interval becomes 1m).
sleep 8

step "every panel query and rule expression returns series"
python3 dashboards/generate.py --queries >"$WORK/queries.json"
python3 scripts/lib/prom-queries.py "http://127.0.0.1:$PROM_PORT" "$WORK/queries.json" --mode files \
  || fail "panel queries or rule expressions without series"
# The rules loaded and evaluated without errors.
curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/rules" | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
bad = [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]
n = sum(len(g["rules"]) for g in groups)
if n == 0 or bad:
    sys.exit(f"rules: {n} loaded, in error: {bad}")
print(f"  {n} rules loaded, none in error")'

echo "observability-test: ok"
