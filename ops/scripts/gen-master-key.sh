#!/bin/sh
# Generate the docker compose master key (32 random bytes, base64) unless one exists.
# Usage: sh ops/scripts/gen-master-key.sh [path]   (default: ops/secrets/master.key)
set -eu
cd "$(dirname "$0")/../.."
key="${1:-ops/secrets/master.key}"
if [ -s "$key" ]; then
  echo "$key exists; leaving it alone" >&2
  exit 0
fi
mkdir -p "$(dirname "$key")"
# The directory keeps other host users out; the file must be readable by the container user (uid 10001).
chmod 0700 "$(dirname "$key")"
python3 -c "import secrets,base64;print(base64.b64encode(secrets.token_bytes(32)).decode())" > "$key"
chmod 0644 "$key"
echo "wrote $key" >&2
