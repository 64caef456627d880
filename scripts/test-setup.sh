#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian/Ubuntu machine: the npm dependencies and the
# Debian packages of the Python Celery peer used by the interoperability tests. Safe to run again:
# it installs only what is missing. Shared services (Redis on localhost:6379) are provided by the
# machine; this script only checks that Redis answers.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mtest-setup:\033[0m %s\n' "$*"; }

# 1. npm dependencies (skipped when node_modules already matches package-lock.json).
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] && [ node_modules/.package-lock.json -nt package.json ]; then
  say "npm dependencies are up to date"
elif [ -f package-lock.json ]; then
  say "npm ci"
  npm ci
else
  say "npm install"
  npm install
fi

# 2. Debian packages: the Python Celery peer (python3-celery with its Redis and AMQP transports).
packages=(python3-celery python3-redis python3-amqp chromium openssl)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  say "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  say "Debian packages present: ${packages[*]}"
fi
/usr/bin/python3 -c 'import celery, redis, amqp' || { say "python3 cannot import celery, redis and amqp"; exit 1; }

# 3. Redis (not started here: the machine runs it). Tests that need it fail with a clear message.
redis_ok=false
if command -v redis-cli >/dev/null 2>&1; then
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ] && redis_ok=true
elif (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  exec 3<>/dev/tcp/127.0.0.1/6379
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&-
  [[ "${reply:-}" == +PONG* ]] && redis_ok=true
fi
if $redis_ok; then
  say "Redis answers on 127.0.0.1:6379"
else
  say "WARNING: Redis does not answer PING on 127.0.0.1:6379 (redis-cli ping failed)."
  say "         The integration tests need it: start one (e.g. 'redis-server --daemonize yes') and run the tests again."
fi
# 4. RabbitMQ (also started by the machine): the AMQP tests need it and rabbitmqctl (they make vhosts).
if command -v rabbitmqctl >/dev/null 2>&1 && rabbitmqctl -q status >/dev/null 2>&1; then
  say "RabbitMQ answers (rabbitmqctl status)"
else
  say "WARNING: RabbitMQ does not answer 'rabbitmqctl status': the AMQP tests need it on 127.0.0.1:5672 (guest/guest)."
fi
say "ready: run 'npm test'"
