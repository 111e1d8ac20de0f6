#!/usr/bin/env bash
# Makes the Compose stack's secrets once; existing files are kept. Compose mounts each as a Docker
# secret (/run/secrets/NAME) and the settings read them as NAME_FILE, so none sits in an
# environment variable, a compose file or a log.
#   redis_backend_password, redis_generator_password  the Redis ACL users' passwords
#   jwt_secret      signs viewer tokens (JWT_SECRET); mint one with
#                   docker-compose exec backend python manage.py new-token
#   metrics_token   the Bearer token /metrics asks for (METRICS_TOKEN)
#   producer_key    a producer key for your apps (X-API-Key); api_keys holds its SHA-256 digest
#                   (API_KEYS: add more digests, comma-separated: python backend/manage.py new-key)
# Usage: compose-secrets.sh [DIR]   (default .secrets/, git-ignored; compose reads
#        ${PULSE_SECRETS_DIR:-./.secrets})
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.secrets}
mkdir -p "$dir"
chmod 700 "$dir"

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# 0644 inside the 0700 directory: the containers' non-root users read the bind-mounted files,
# other users of this machine cannot reach them. Hex: safe in a URL and in a header.
for name in redis_backend_password redis_generator_password jwt_secret metrics_token producer_key; do
  [ -s "$dir/$name" ] || (umask 022 && random_hex >"$dir/$name")
done
if [ ! -s "$dir/api_keys" ]; then
  (umask 022 && printf '%s' "$(cat "$dir/producer_key")" | sha256sum | cut -d' ' -f1 | tr -d '\n' >"$dir/api_keys")
fi
echo "secrets in $dir"
