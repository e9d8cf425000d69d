# Sourced by scripts that need a Prometheus of their own on loopback (kafka-e2e.sh; the
# same steps as scripts/observability-test.sh).
#
#   prometheus_install          installs Debian's prometheus package when prometheus or
#                               promtool is missing (needs root, as in CI)
#   prometheus_start DIR TARGET starts a Prometheus on a free loopback port scraping TARGET
#                               (host:port) every second, with the repository's rules, its
#                               config and TSDB under DIR; waits until it is ready; sets
#                               PROM_URL and PROM_PID (the caller stops it)
#   wait_http URL SECONDS       until URL answers 200
#
# The caller defines fail and REPO.

if ! declare -F free_port >/dev/null; then
  free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
  }
fi

wait_http() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

prometheus_install() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo "installing Debian's prometheus package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  # The Debian package starts a service on :9090 where systemd runs; nothing here uses it.
}

prometheus_start() {
  local dir=$1 target=$2 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/prometheus.yml" <<PROM
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/dashboards/rules/riskwatch.rules.yml
scrape_configs:
  - job_name: riskwatch
    static_configs:
      - targets: ["$target"]
PROM
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
  PROM_PID=$!
  PROM_URL="http://127.0.0.1:$port"
  wait_http "$PROM_URL/-/ready" 60 || fail "prometheus did not start (see $dir/prometheus.log)"
}
