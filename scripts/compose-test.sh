#!/usr/bin/env bash
# `make test-compose`: the Docker Compose stack built and tested from outside, as a user runs it.
#  1. a Docker engine (the running one, or dockerd started here: scripts/docker-engine.sh)
#  2. base images (pulled, or made locally when no registry answers: scripts/docker-base-images.sh)
#  3. the stack with generated secrets and a settings file, every service healthy, then
#     tests/compose/stack.test.mjs (Chromium through nginx, REST, Socket.IO, restart, settings)
#  4. the scale variant (3 backends): tests/compose/scale.test.mjs
#  5. `docker-compose down -v` after each, checked to leave no container, network or volume
# The images and the build cache (the build stages' untagged images too: pruning them makes the
# next build start over) are kept, so a second run builds nothing. dockerd is stopped
# at the end if this script started it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
export COMPOSE_PROJECT_NAME=pulsetest
work="$root/.run/compose-test"
t0=$SECONDS
step() { printf '[compose-test %3ds] %s\n' $((SECONDS - t0)) "$*"; }

scripts/docker-engine.sh start
files=(-f docker-compose.yml)
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "${COMPOSE_TEST_KEEP:-}" ]; then
    step "failed; stack left running (COMPOSE_TEST_KEEP): docker-compose -p $COMPOSE_PROJECT_NAME ${files[*]} down -v"
  else
    docker-compose --env-file "$work/settings.env" "${files[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    scripts/docker-engine.sh stop
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$work"
mkdir -p "$work"
scripts/docker-base-images.sh
scripts/compose-secrets.sh "$work/secrets" >/dev/null
export PULSE_SECRETS_DIR="$work/secrets"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PULSE_PORT=$port PULSE_URL="https://127.0.0.1:$port"

# Settings a user would put in their file: each must reach the backend (the tests check them).
cat >"$work/settings.env" <<ENV
RATE_LIMIT=100 per minute
RECENT_MAX=2000
MAX_CONNECTIONS_PER_ADDRESS=64
GENERATOR_RATE=100
CORS_ORIGINS=https://127.0.0.1:$port,https://localhost:$port
LOG_LEVEL=INFO
ENV

compose() { docker-compose --env-file "$work/settings.env" "${files[@]}" "$@"; }

wait_healthy() {  # wait_healthy N: until N containers of the project are all healthy
  local want=$1 ids states
  for _ in $(seq 1 90); do
    ids=$(compose ps -q)
    states=$(echo "$ids" | xargs -r docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}')
    if [ "$(echo "$ids" | grep -c .)" -eq "$want" ] && ! echo "$states" | grep -qv ' running healthy$'; then
      echo "$states" | sed 's/^\//  /'
      return 0
    fi
    if echo "$states" | grep -q ' exited \| unhealthy$'; then break; fi
    sleep 2
  done
  echo "error: not every service became healthy:" >&2
  echo "$states" >&2
  compose logs --tail=40 >&2
  return 1
}

assert_nothing_left() {
  local what left=""
  for what in container network volume; do
    if [ "$what" = container ]; then
      left+=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    else
      left+=$(docker "$what" ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    fi
  done
  if [ -n "$left" ]; then
    echo "error: docker-compose down -v left: $left" >&2
    return 1
  fi
  step "down -v left no container, network or volume of $COMPOSE_PROJECT_NAME"
}

trust() {  # trust CERT: the Node clients verify the stack's TLS certificate against it
  cat /etc/ssl/certs/ca-certificates.crt "$1" >"$work/ca-bundle.crt" 2>/dev/null || cp "$1" "$work/ca-bundle.crt"
  export NODE_EXTRA_CA_CERTS="$work/ca-bundle.crt"
}

make_certificate() {  # a CA and a server certificate for 127.0.0.1, as a user would bring
  local d="$work/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=compose-test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/san.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
  chgrp 10101 "$d/server.key" 2>/dev/null || chmod 644 "$d/server.key"  # nginx (uid:gid 10101) reads it
  chmod g+r "$d/server.key"
  export TLS_CERT="$d/server.crt" TLS_KEY="$d/server.key"
}

# The main stack with a certificate of our own (docker-compose.tls.yml); the scale variant
# below with the self-signed one nginx makes when none is given.
make_certificate
files=(-f docker-compose.yml -f docker-compose.tls.yml)
step "building the images"
s=$SECONDS
compose build --quiet >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
step "images built in $((SECONDS - s)) s"
compose up -d 2>&1 | grep -v '^$' || true
wait_healthy 4
step "stack healthy on $PULSE_URL"
trust "$work/tls/ca.crt"
COMPOSE_FILES=docker-compose.yml:docker-compose.tls.yml node --test --test-reporter=spec tests/compose/stack.test.mjs
compose down -v --remove-orphans >/dev/null 2>&1
assert_nothing_left

step "scale variant: 3 backends behind nginx"
files=(-f docker-compose.yml -f docker-compose.scale.yml)
compose up -d --scale backend=3 2>&1 | grep -v '^$' || true
wait_healthy 6
compose logs --no-color frontend >"$work/frontend.log"
grep -q "SELF-SIGNED certificate" "$work/frontend.log" || { echo "error: nginx did not say it serves a self-signed certificate" >&2; exit 1; }
compose exec -T frontend cat /var/lib/pulse-nginx/tls/self-signed.crt >"$work/self-signed.crt"
trust "$work/self-signed.crt"
COMPOSE_FILES=docker-compose.yml:docker-compose.scale.yml node --test --test-reporter=spec tests/compose/scale.test.mjs
compose down -v --remove-orphans >/dev/null 2>&1
assert_nothing_left
step "passed in $((SECONDS - t0)) s"
