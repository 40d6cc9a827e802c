#!/usr/bin/env bash
# Make sure a RabbitMQ broker is reachable for `make run` / `make test`.
# With AMQP_URL set to a remote broker, nothing is started here. Otherwise the local broker
# (Debian's rabbitmq-server) is started if it is down, and the sharding plugin (x-modulus-hash exchange)
# that the topology needs is enabled.
set -euo pipefail

url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport=$(python3 - "$url" <<'PY'
import sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
print(f"{u.hostname or '127.0.0.1'} {u.port or 5672}")
PY
)
read -r host port <<<"$hostport"

reachable() { python3 -c "import socket,sys; socket.create_connection(('$host', $port), 2)" 2>/dev/null; }

case "$host" in
  127.*|localhost|::1) local_broker=1 ;;
  *) local_broker=0 ;;
esac

if [ "$local_broker" = 1 ] && command -v rabbitmq-server >/dev/null 2>&1; then
  if ! reachable; then
    echo "starting the local RabbitMQ broker..." >&2
    # Quorum queues hold files open; the default 1024 descriptors run out with many of them.
    if [ "$(id -u)" = 0 ] && [ -d /etc/security/limits.d ] && [ ! -f /etc/security/limits.d/rabbitmq.conf ]; then
      printf 'rabbitmq soft nofile 20000\nrabbitmq hard nofile 20000\n' > /etc/security/limits.d/rabbitmq.conf
    fi
    rabbitmq-server -detached || true
    for _ in $(seq 1 60); do reachable && break; sleep 1; done
  fi
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins enable --quiet rabbitmq_sharding >/dev/null 2>&1 || \
      rabbitmq-plugins enable rabbitmq_sharding >/dev/null
  fi
fi

if reachable; then
  echo "RabbitMQ reachable at $host:$port" >&2
else
  echo "RabbitMQ is NOT reachable at $host:$port (set AMQP_URL or install rabbitmq-server)" >&2
  # Broker tests fail (not skip) under CI=true; outside CI, `make test` still runs the rest.
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
