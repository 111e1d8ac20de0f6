#!/usr/bin/env bash
# `make run`: a private redis-server (unless REDIS_URL answers), the backend, the generator and
# the dashboard at http://localhost:3000. Ctrl-C stops every process this script started.
# The dashboard: `preview` (make run) serves the production build in frontend/dist (the Makefile
# builds it) with `vite preview`; `dev` (make dev) runs Vite's dev server, with hot reload. Both
# proxy /api and /socket.io (WebSocket included) to the backend (frontend/vite.config.js).
set -euo pipefail
dashboard=${1:-preview}
case $dashboard in
  preview|dev) ;;
  *) echo "usage: $0 [preview|dev]"; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py="$root/.venv/bin/python"
mkdir -p .run
pids=()

stop_all() {
  trap - INT TERM EXIT
  # Newest first, each gone before the next: the generator and the backend flush what they hold
  # while the private Redis still answers.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM -- "-${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped."
  exit 0
}
trap stop_all INT TERM EXIT

start() {  # start "name" command...: in its own process group, output to .run/name.log and the terminal
  local name=$1; shift
  setsid "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
}

# Settings as the backend reads them (environment first, then backend/.env); a bad one stops here
# with the backend's one line. The URL shown is masked; the one to connect with stays in the probe.
settings=$("$py" - <<'PY'
import sys
from analytics.redis_url import mask
from analytics.settings import Settings, SettingsError
try:
    s = Settings.from_env()
except SettingsError as exc:
    sys.exit(f"make run: bad setting: {exc}")
print(mask(s.REDIS_URL), s.PORT)
PY
) || exit 2
read -r redis_url port <<<"$settings"

if ! "$py" -c "from analytics import redis_tls; from analytics.settings import Settings
redis_tls.connect(Settings.from_env(), socket_connect_timeout=1).ping()" 2>/dev/null; then
  command -v redis-server >/dev/null || { echo "error: redis-server is not installed (make install)"; exit 1; }
  redis_port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p .run/redis
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$root/.run/redis" --save 60 1000 --appendonly no --loglevel warning \
    --client-output-buffer-limit "pubsub 256mb 128mb 60"
  redis_url="redis://127.0.0.1:$redis_port/0"
  echo "private redis-server on $redis_url (data in .run/redis)"
  export REDIS_URL="$redis_url"
  unset REDIS_URL_FILE REDIS_PASSWORD REDIS_PASSWORD_FILE  # the private server has no password
  unset REDIS_CA_FILE REDIS_CERT_FILE REDIS_KEY_FILE REDIS_TLS_INSECURE  # nor TLS
fi

start backend "$py" backend/app.py
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/api/health" >/dev/null || { echo "error: the backend did not become healthy"; exit 1; }
start generator "$py" backend/generator.py
BACKEND_URL="http://127.0.0.1:$port" PORT="${DASHBOARD_PORT:-3000}" start frontend \
  bash -c "cd frontend && exec npm run $dashboard -- --strictPort"

cat <<MSG

  dashboard   http://localhost:${DASHBOARD_PORT:-3000}   ($([ "$dashboard" = dev ] && echo "Vite dev server, hot reload" || echo "production build"))
  API         http://127.0.0.1:$port/api/health   /api/metrics/recent   /api/metrics/aggregate?window=60
  Redis       $redis_url
  Ctrl-C stops everything started here.

MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest."
