#!/usr/bin/env bash
# Makes the base images the Dockerfiles start FROM (debian:bookworm-slim, debian:trixie-slim)
# on a machine that cannot pull from a registry: a Debian rootfs from debootstrap
# (--variant=minbase, the same Debian releases), imported with `docker import`.
#
# Only these locally made images get what this machine needs for HTTPS and apt (its extra CAs in
# /usr/local/share/ca-certificates, its apt config and sources); the Dockerfiles users build
# never do. An image that already exists is kept (delete it to rebuild: docker rmi NAME).
# Where a registry answers (CI, a laptop), the real images are pulled instead.
#
# Usage: docker-base-images.sh   (a missing image is pulled when a registry answers, else made)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
images=(bookworm trixie)

mirror() {  # the first Debian URI apt uses on this machine
  local uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_image() {
  local suite=$1 name=debian:$1-slim dir
  if docker image inspect "$name" >/dev/null 2>&1; then
    echo "base image $name: present"
    return 0
  fi
  if timeout 60 docker pull -q "$name" >/dev/null 2>&1; then
    echo "base image $name: pulled"
    return 0
  fi
  "$root/scripts/ensure-system-packages.sh" debootstrap:debootstrap
  dir=$(mktemp -d /tmp/rootfs-"$suite".XXXXXX)
  trap 'rm -rf "$dir"' RETURN
  echo "base image $name: debootstrap $suite from $(mirror) (about a minute)"
  local started=$SECONDS
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$(mirror)" >"$dir.log" 2>&1 \
    || { tail -n 20 "$dir.log" >&2; rm -f "$dir.log"; return 1; }
  rm -f "$dir.log"

  # This machine only: its extra CAs (HTTPS goes through an intercepting proxy) and apt config.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
  fi
  chroot "$dir" update-ca-certificates >/dev/null
  [ -f /etc/apt/apt.conf.d/99artifact-registry ] && cp /etc/apt/apt.conf.d/99artifact-registry "$dir/etc/apt/apt.conf.d/"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e "s/\bbookworm\b/$suite/g" /etc/apt/sources.list.d/debian.sources >"$dir/etc/apt/sources.list.d/debian.sources"
    rm -f "$dir/etc/apt/sources.list"
  fi
  # As the official slim images: no apt lists or caches, no docs (their docker-clean settings).
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/usr/share/doc/* "$dir"/usr/share/man/*

  local bundle=/etc/ssl/certs/ca-certificates.crt
  tar --numeric-owner -C "$dir" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV SSL_CERT_FILE=$bundle PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle NODE_EXTRA_CA_CERTS=$bundle" \
    --message "debootstrap --variant=minbase $suite (made locally by scripts/docker-base-images.sh)" \
    - "$name" >/dev/null
  echo "base image $name: made in $((SECONDS - started)) s"
}

for suite in "${images[@]}"; do make_image "$suite"; done
