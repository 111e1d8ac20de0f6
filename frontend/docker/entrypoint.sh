#!/bin/sh
# Starts nginx (see ../nginx.conf). Writes /tmp/nginx/runtime.conf from the environment:
#   TLS_CERT_FILE, TLS_KEY_FILE  the certificate (chain) and key, PEM (mounted files or secrets).
#                                Neither given: a self-signed certificate is made on first start
#                                under /var/lib/pulse-nginx/tls (keep it in a volume), and every
#                                start says so loudly.
#   TLS_SELF_SIGNED_HOSTS        names for that certificate (localhost,127.0.0.1 by default)
#   BACKEND_ADDR                 host:port of the backend (backend:5000)
#   INGEST_MAX_BYTES             the largest request body, as the backend's setting (1048576)
#   MAX_CONNECTIONS_PER_ADDRESS  requests in progress per client address, as the backend's
#                                setting (256; 0 = no cap): the backend leaves it to this proxy
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

# The backend's settings of the same names (analytics/settings.py), with its defaults; unset or
# empty (as docker-compose passes an unset one) = the default.
max_body=${INGEST_MAX_BYTES:-1048576}
per_address=${MAX_CONNECTIONS_PER_ADDRESS:-256}
for pair in "INGEST_MAX_BYTES=$max_body" "MAX_CONNECTIONS_PER_ADDRESS=$per_address"; do
  case "${pair#*=}" in
    *[!0-9]*)
      echo "nginx: ${pair%%=*} must be a whole number (got '${pair#*=}')" >&2
      exit 1 ;;
  esac
done
if [ "$max_body" -lt 1024 ]; then  # as the backend's lower bound; 0 would mean "no limit" to nginx
  echo "nginx: INGEST_MAX_BYTES must be at least 1024 (got '$max_body')" >&2
  exit 1
fi
[ "$per_address" -le 65535 ] || per_address=65535  # nginx's most; past it a cap means nothing here
limit_conn="limit_conn per_address $per_address;"
[ "$per_address" -gt 0 ] || limit_conn="# MAX_CONNECTIONS_PER_ADDRESS=0: no cap per address"

resolver=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf)
case "$resolver" in *:*) resolver="[$resolver]" ;; esac
cat >"$run/runtime.conf" <<CONF
ssl_certificate $cert;
ssl_certificate_key $key;
resolver ${resolver:-127.0.0.11} valid=2s ipv6=off;
resolver_timeout 2s;
map \$host \$backend_addr { default ${BACKEND_ADDR:-backend:5000}; }
client_max_body_size $max_body;
$limit_conn
CONF
exec nginx -g 'daemon off;'
