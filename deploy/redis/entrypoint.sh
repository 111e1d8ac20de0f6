#!/bin/sh
# Starts redis-server with the users of /etc/redis/pulse/acl.conf. Each user's password is read
# from $REDIS_SECRETS_DIR/redis_<user>_password (Docker or Kubernetes secrets) and only its
# SHA-256 is written to the ACL file, which lives in a private temporary directory.
set -eu
secrets=${REDIS_SECRETS_DIR:-/run/secrets}
acl_dir=$(mktemp -d /tmp/redis-acl.XXXXXX)
acl="$acl_dir/users.acl"
umask 077
echo "user default off resetchannels resetkeys -@all" >"$acl"
grep -v '^[[:space:]]*\(#\|$\)' /etc/redis/pulse/acl.conf | while read -r name rules; do
  case " $rules " in
    *" nopass "*) echo "user $name on $rules" >>"$acl" ;;
    *)
      file="$secrets/redis_${name}_password"
      if [ ! -s "$file" ]; then
        echo "redis: missing secret $file for ACL user '$name'" >&2
        exit 1
      fi
      hash=$(tr -d '\n' <"$file" | sha256sum | cut -d' ' -f1)
      echo "user $name on #$hash $rules" >>"$acl"
      ;;
  esac
done
exec redis-server /etc/redis/pulse/redis.conf --aclfile "$acl" "$@"
