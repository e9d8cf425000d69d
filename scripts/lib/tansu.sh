# Sourced by scripts that need a Kafka-compatible broker: tansu, in memory, on loopback.
#
#   tansu_install              installs tansu into ~/.cache/riskwatch/tansu if missing
#                              (`cargo install tansu`, about 11-15 minutes cold, with its own
#                              target dir TANSU_BUILD_DIR so it never locks the project's)
#   tansu_start LOGFILE        starts a broker on a free port; sets BROKER (host:port) and
#                              TANSU_PID (the caller stops it)
#   tansu_topic NAME PARTS     creates a topic (the broker does not create them on demand)
#
# The caller defines say and fail.

TANSU_ROOT="$HOME/.cache/riskwatch/tansu"
TANSU="$TANSU_ROOT/bin/tansu"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

tansu_install() {
  if [ ! -x "$TANSU" ]; then
    say "installing tansu into $TANSU_ROOT (about 11-15 minutes, once)"
    local t0
    t0=$(date +%s)
    CARGO_TARGET_DIR="${TANSU_BUILD_DIR:-/tmp/tansu-build}" \
      cargo install tansu --locked --features dynostore --root "$TANSU_ROOT"
    say "tansu installed in $(($(date +%s) - t0))s"
  fi
}

tansu_start() {
  local port
  port=$(free_port)
  BROKER="127.0.0.1:$port"
  "$TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ >"$1" 2>&1 &
  TANSU_PID=$!
  wait_port "$port" || fail "tansu did not start (see $1)"
}

tansu_topic() {
  "$TANSU" topic create --broker "tcp://$BROKER" --partitions "$2" "$1" >/dev/null
}
