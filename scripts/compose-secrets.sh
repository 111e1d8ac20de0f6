#!/usr/bin/env bash
# Makes the Compose stack's secrets once: random passwords for the Redis ACL users and the
# settings files that carry them. Existing files are kept.
# Usage: compose-secrets.sh [DIR]   (default .secrets/, git-ignored; compose reads
#        ${PULSE_SECRETS_DIR:-./.secrets})
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.secrets}
mkdir -p "$dir"
chmod 700 "$dir"
for user in backend generator; do
  pw="$dir/redis_${user}_password"
  if [ ! -s "$pw" ]; then
    # Hex: safe in a URL. 0644 inside the 0700 directory: the containers' non-root users read
    # the bind-mounted file, other users of this machine cannot reach it.
    (umask 022 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$pw")
  fi
  env="$dir/$user.env"
  if [ ! -s "$env" ]; then
    # TODO(REDIS_PASSWORD_FILE): only until the settings read the password from the secret file.
    (umask 077 && printf 'REDIS_URL=redis://%s:%s@redis:6379/0\n' "$user" "$(cat "$pw")" >"$env")
  fi
done
echo "secrets in $dir"
