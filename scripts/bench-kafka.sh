#!/usr/bin/env bash
# End-to-end benchmark through a real Kafka-compatible broker on this machine: starts tansu
# (in memory, loopback; installed into ~/.cache/riskwatch/tansu if missing) and runs
# `riskwatch bench --kafka` against it. The broker, the producer, the pipeline and the
# output reader all share the machine, as the issue's targets assume.
#
#   scripts/bench-kafka.sh [riskwatch bench flags]
#
# Defaults: --kafka-rates 20000,50000,100000,0 --seconds 20 --runs 3 --partitions 4
# --workers 2 (flags given here replace them one by one). RISKWATCH__… variables override
# pipeline settings (e.g. RISKWATCH__KAFKA__LINGER='"1ms"').
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-bench-kafka.XXXXXX")

say() { echo "bench-kafka: $*" >&2; }
fail() {
  echo "bench-kafka: FAIL: $*" >&2
  exit 1
}
# shellcheck source=lib/tansu.sh
. "$REPO/scripts/lib/tansu.sh"

TANSU_PID=""
cleanup() {
  [ -z "$TANSU_PID" ] || kill "$TANSU_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

tansu_install
cargo build --release --quiet
tansu_start "$WORK/tansu.log"
say "tansu on $BROKER"

declare -A flags=(
  [--kafka-rates]=20000,50000,100000,0
  [--seconds]=20
  [--runs]=3
  [--partitions]=4
  [--workers]=2
)
extra=()
while [ $# -gt 0 ]; do
  if [ -n "${flags[$1]+x}" ] && [ $# -ge 2 ]; then
    flags[$1]=$2
    shift 2
  else
    extra+=("$1")
    shift
  fi
done
args=()
for k in "${!flags[@]}"; do args+=("$k" "${flags[$k]}"); done
"$CARGO_TARGET_DIR/release/riskwatch" bench --kafka --brokers "$BROKER" --dir "$WORK" \
  "${args[@]}" "${extra[@]}"
