#!/usr/bin/env bash
# The riskwatch demo on the embedded default source (files; no broker needed): generates a
# synthetic loan book, replays it through the pipeline and prints throughput, rejects, alerts
# per rule, the risk-level mix and detection quality against the book's truth.
#
#   scripts/demo.sh                               20,000 customers x 120 days, 2 workers
#   scripts/demo.sh --customers 2000 --days 60    any `riskwatch demo` option passes through
#
# The book and outputs go to out/demo/ (override with --dir). Builds in release mode into
# $CARGO_TARGET_DIR (default ~/.cache/riskwatch/target), which later runs reuse.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}"

bash scripts/setup.sh --build
cargo build --release
exec "$CARGO_TARGET_DIR/release/riskwatch" demo "$@"
