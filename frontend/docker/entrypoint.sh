#!/bin/sh
# Starts nginx (see ../nginx.conf). Writes /tmp/nginx/runtime.conf from the environment:
#   TLS_CERT_FILE, TLS_KEY_FILE  the certificate (chain) and key, PEM (mounted files or secrets).
#                                Neither given: a self-signed certificate is made on first start
#                                under /var/lib/pulse-nginx/tls (keep it in a volume), and every
#                                start says so loudly.
#   TLS_SELF_SIGNED_HOSTS        names for that certificate (localhost,127.0.0.1 by default)
#   BACKEND_ADDR                 host:port of the backend (backend:5000)
set -eu
run=/tmp/nginx
mkdir -p "$run/client_body" "$run/proxy" "$run/fastcgi" "$run/uwsgi" "$run/scgi"

cert=${TLS_CERT_FILE:-}
key=${TLS_KEY_FILE:-}
if [ -n "$cert" ] || [ -n "$key" ]; then
  for f in "$cert" "$key"; do
    if [ -z "$f" ] || [ ! -r "$f" ]; then
      echo "nginx: TLS_CERT_FILE and TLS_KEY_FILE must both name readable files (got '$cert', '$key')" >&2
      exit 1
    fi
  done
  echo "nginx: TLS certificate $cert"
else
  dir=/var/lib/pulse-nginx/tls
  cert=$dir/self-signed.crt
  key=$dir/self-signed.key
  if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
    san=""
    for h in $(echo "${TLS_SELF_SIGNED_HOSTS:-localhost,127.0.0.1}" | tr ',' ' '); do
      case "$h" in
        *[!0-9.:]*) san="$san,DNS:$h" ;;
        *) san="$san,IP:$h" ;;
      esac
    done
    mkdir -p "$dir"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
      -subj "/CN=pulse self-signed" -addext "subjectAltName=${san#,}" \
      -keyout "$key" -out "$cert" 2>/dev/null)
    made="made now"
  else
    made="made on first start"
  fi
  cat >&2 <<MSG
nginx: ######################################################################################
nginx: WARNING: no TLS_CERT_FILE / TLS_KEY_FILE given: serving a SELF-SIGNED certificate
nginx: ($made, $cert). Browsers will warn. Mount a real certificate
nginx: and set TLS_CERT_FILE and TLS_KEY_FILE (docs/docker.md, "TLS").
nginx: ######################################################################################
MSG
fi

resolver=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf)
case "$resolver" in *:*) resolver="[$resolver]" ;; esac
cat >"$run/runtime.conf" <<CONF
ssl_certificate $cert;
ssl_certificate_key $key;
resolver ${resolver:-127.0.0.11} valid=2s ipv6=off;
resolver_timeout 2s;
map \$host \$backend_addr { default ${BACKEND_ADDR:-backend:5000}; }
CONF
exec nginx -g 'daemon off;'
