#!/usr/bin/env bash
# The backtest report in a real browser (issue 12, item 4).
#
#   1. installs Debian's chromium package when /usr/bin/chromium is missing (needs root)
#   2. riskwatch gen (500 customers x 60 days), then riskwatch compare on it with
#      tests/fixtures/report-champion.toml and report-challenger.toml --report report.html
#   3. the page on its own: one file, every <svg> has a data-chart name, the expected 16
#      charts (8 rows with truth.ndjson), and no http:// or https:// inside any tag
#   4. headless Chromium (--dump-dom, --enable-logging=stderr --v=0): the page's inline script
#      sets data-rendered on <body> to the count of charts with a non-empty bounding box,
#      which must equal data-charts; the browser's log must hold no console message at all
#      (the page logs nothing, so any CONSOLE line is an error)
#   5. a screenshot (--screenshot --window-size=1400,3000): a PNG of that size and not blank
#      (a blank page compresses to a few KB)
#   6. the check itself: a copy with one chart emptied and a copy with a script error must
#      both be rejected, or the test fails
#
# Bounded: about 30 s after the Chromium install. Needs the release binary (cargo build
# --release); BIN or RISKWATCH_BIN overrides its path. KEEP_WORK=1 keeps the temporary
# directory (with report.html and screenshot.png); REPORT_OUT=DIR copies both there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}"
BIN="${BIN:-${RISKWATCH_BIN:-$CARGO_TARGET_DIR/release/riskwatch}}"
CHROMIUM=/usr/bin/chromium
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-report.XXXXXX")
CHARTS=16

cleanup() {
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() { echo "report-test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ -x "$BIN" ] || fail "$BIN not found: build it with cargo build --release"

step "chromium"
if [ ! -x "$CHROMIUM" ]; then
  [ "$(id -u)" = 0 ] || fail "$CHROMIUM is missing; install it with: apt-get install chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null &&
      apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >/dev/null; }
fi
"$CHROMIUM" --version

# browse PAGE LOG ARGS...: headless Chromium on PAGE with a fresh profile; stdout is the
# browser's (the DOM with --dump-dom), its log goes to LOG.
browse() {
  local page=$1 log=$2
  shift 2
  local profile
  profile=$(mktemp -d "$WORK/profile.XXXXXX")
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" "file://$page" 2>"$log"
}

# check PAGE: the static and in-browser checks of steps 3 and 4; prints why on failure.
check() {
  local page=$1 name
  name=$(basename "$page" .html)
  python3 - "$page" "$CHARTS" <<'EOF' || return 1
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
want = int(sys.argv[2])
svgs = re.findall(r"<svg\b[^>]*>", html)
named = [s for s in svgs if "data-chart=" in s]
if len(svgs) != len(named):
    sys.exit(f"{len(svgs) - len(named)} <svg> without data-chart")
if len(named) != want:
    sys.exit(f"{len(named)} charts, expected {want}")
tags = re.findall(r"<[^>]*>", html)
bad = [t for t in tags if "http://" in t or "https://" in t]
if bad:
    sys.exit(f"a network reference in a tag: {bad[0][:200]}")
EOF
  browse "$page" "$WORK/$name.log" --dump-dom >"$WORK/$name.dom" || {
    echo "chromium failed on $page:" >&2
    tail -n 20 "$WORK/$name.log" >&2
    return 1
  }
  local body charts rendered
  body=$(grep -o '<body[^>]*>' "$WORK/$name.dom" | head -n 1)
  charts=$(sed -n 's/.*data-charts="\([0-9]*\)".*/\1/p' <<<"$body")
  rendered=$(sed -n 's/.*data-rendered="\([0-9]*\)".*/\1/p' <<<"$body")
  if [ -z "$rendered" ]; then
    echo "the page's script did not run (no data-rendered on <body>): $body" >&2
    return 1
  fi
  if [ "$rendered" != "$charts" ] || [ "$charts" != "$CHARTS" ]; then
    echo "$rendered of $charts charts rendered (expected $CHARTS)" >&2
    return 1
  fi
  if grep -q 'CONSOLE' "$WORK/$name.log"; then
    echo "console messages:" >&2
    grep 'CONSOLE' "$WORK/$name.log" | head -n 5 >&2
    return 1
  fi
  echo "$name: $rendered of $charts charts rendered, no console message"
}

start=$(date +%s.%N)
step "gen and compare"
"$BIN" gen --customers 500 --days 60 --out "$WORK/book" >/dev/null 2>"$WORK/gen.log" ||
  { tail -n 20 "$WORK/gen.log" >&2; fail "riskwatch gen"; }
"$BIN" compare --input "$WORK/book" --config tests/fixtures/report-champion.toml \
  tests/fixtures/report-challenger.toml --output "$WORK/compare" \
  --report "$WORK/report.html" >"$WORK/compare.txt" 2>"$WORK/compare.log" ||
  { tail -n 20 "$WORK/compare.log" >&2; fail "riskwatch compare --report"; }
[ -s "$WORK/report.html" ] || fail "compare wrote no report"
echo "report.html: $(wc -c <"$WORK/report.html") bytes"

step "the report in headless Chromium"
check "$WORK/report.html" || fail "the report did not pass"

step "screenshot"
browse "$WORK/report.html" "$WORK/shot.log" --screenshot="$WORK/screenshot.png" \
  --window-size=1400,3000 >/dev/null || { tail -n 20 "$WORK/shot.log" >&2; fail "screenshot"; }
python3 - "$WORK/screenshot.png" <<'EOF' || fail "the screenshot"
import struct, sys
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
w, h = struct.unpack(">II", data[16:24])
if (w, h) != (1400, 3000):
    sys.exit(f"{w}x{h}, expected 1400x3000")
if len(data) < 60_000:
    sys.exit(f"only {len(data)} bytes: a blank or nearly blank page")
print(f"screenshot.png: {w}x{h}, {len(data)} bytes")
EOF

step "the check rejects a broken page"
python3 - "$WORK/report.html" "$WORK/empty-chart.html" "$WORK/script-error.html" <<'EOF'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
# One chart emptied: its <svg> keeps its name and loses its content.
empty = re.sub(r'(<svg data-chart="levels-a"[^>]*>).*?</svg>', r"\1</svg>", html, count=1,
               flags=re.S)
assert empty != html
open(sys.argv[2], "w", encoding="utf-8").write(empty)
broken = html.replace("</body>", "<script>notDefinedAnywhere();</script></body>", 1)
open(sys.argv[3], "w", encoding="utf-8").write(broken)
EOF
for broken in empty-chart script-error; do
  if check "$WORK/$broken.html" 2>"$WORK/$broken.why"; then
    fail "the check passed $broken.html, which it must reject"
  fi
  echo "$broken.html rejected: $(head -n 2 "$WORK/$broken.why" | tr '\n' ' ')"
done

if [ -n "${REPORT_OUT:-}" ]; then
  mkdir -p "$REPORT_OUT"
  cp "$WORK/report.html" "$WORK/screenshot.png" "$REPORT_OUT/"
fi
echo "report-test: ok in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s after the install"
