#!/usr/bin/env bash
# A Docker engine for `make test-compose`.
#   docker-engine.sh start  use the engine that answers (CI, Docker Desktop, a system service);
#                           when none does, install Debian's docker.io and start dockerd here
#                           (log .run/dockerd.log, PID .run/dockerd.pid). Idempotent.
#   docker-engine.sh stop   stop dockerd only if `start` started it (the PID file says so).
# Without root (or passwordless sudo) and without a running engine it fails with one line that
# says how to skip the compose test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/.run"
pidfile="$run/dockerd.pid"
skip_hint="no Docker engine here and none can be started (needs root and apt-get, or a running engine); skip the compose test with: make test SKIP_COMPOSE=1"

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ours_running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if answers; then
    ours_running && echo "dockerd (started by this project, PID $(cat "$pidfile")) answers" || echo "using the running Docker engine"
    return 0
  fi
  rm -f "$pidfile"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $skip_hint" >&2
    exit 1
  fi
  if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    "$root/scripts/ensure-system-packages.sh" dockerd:docker.io || { echo "error: $skip_hint" >&2; exit 1; }
  fi
  mkdir -p "$run"
  # No systemd on these machines: dockerd runs in its own session, stopped by PID.
  setsid dockerd --storage-driver=overlay2 >"$run/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if answers; then
      echo "dockerd started (PID $(cat "$pidfile"), log .run/dockerd.log)"
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.2
  done
  echo "error: dockerd did not start; last lines of .run/dockerd.log:" >&2
  tail -n 15 "$run/dockerd.log" >&2 || true
  echo "error: $skip_hint" >&2
  exit 1
}

stop() {
  if ! ours_running; then
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "dockerd (PID $pid) stopped"; return 0; }
    sleep 0.2
  done
  echo "warning: dockerd (PID $pid) still running after 20 s" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
