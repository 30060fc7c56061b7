#!/usr/bin/env bash
# Starts the backing services the tests use (Redis, PostgreSQL, MariaDB, Mosquitto, NATS), if they are not running (they are started
# before a session on these machines; a stopped one is started with the same command), and installs the
# binaries the tests start private instances of (the brokers, and docker-registry for the registry tests).
set -euo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() {
  for _ in $(seq 1 100); do up "$1" && return 0; sleep 0.1; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2; return 1
}
# The brokers' binaries: the trigger tests also start private instances of them (to restart them).
# docker-registry (the CNCF distribution server): the registry tests start a private one each,
# one of them over HTTPS with a certificate openssl makes.
missing=()
for pkg in redis-server:redis-server mosquitto:mosquitto nats-server:nats-server docker-registry:docker-registry openssl:openssl; do
  bin=${pkg%%:*}
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || missing+=("${pkg#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! up 6379; then
  echo "services: starting Redis" >&2
  if ! command -v redis-server >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up 6379 Redis
fi
if ! up 5432; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_up 5432 PostgreSQL
fi
if ! up 3306; then
  echo "services: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_up 3306 MariaDB
fi
if ! up 1883; then
  echo "services: starting Mosquitto" >&2
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_up 1883 Mosquitto
fi
if ! up 4222; then
  echo "services: starting NATS" >&2
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  fi
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_up 4222 NATS
fi
