#!/usr/bin/env bash
# Makes sure the services the test suite talks to are installed and running on this machine:
# PostgreSQL (5432), MariaDB (3306), Redis (6379) and an S3-compatible server (moto, 9000).
# Installs them from Debian's packages (moto from PyPI) when missing (needs root), starts them
# when stopped, and waits until each answers.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
have pg_ctlcluster || missing+=(postgresql)
have mariadbd || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
have redis-server || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "services: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  echo "services: starting MariaDB"
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi

wait_for() {
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "services: $name did not become ready" >&2; return 1
}
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
wait_for MariaDB mariadb-admin -h 127.0.0.1 -uroot ping

# Trust/empty-password access as the suite expects (idempotent).
psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null 2>&1 || {
  echo "services: PostgreSQL does not accept user postgres from 127.0.0.1 without a password;" >&2
  echo "          set SWITCHBOARD_TEST_POSTGRES_URL to a URL with credentials." >&2
}
mariadb -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1 || true
echo "services: PostgreSQL, MariaDB and Redis are up"

# An S3-compatible server for the media store's tests: moto's standalone server (PyPI
# `moto[server]`) on 127.0.0.1:${SWITCHBOARD_TEST_S3_PORT:-9000}, in memory. Skipped when something
# already answers there as S3; the tests create their own bucket.
s3_port=${SWITCHBOARD_TEST_S3_PORT:-9000}
s3_answers() { curl -sf -m 2 "http://127.0.0.1:$s3_port/" 2>/dev/null | grep -q ListAllMyBucketsResult; }
if ! s3_answers; then
  # A no-op when already installed (moto without its server extras would not start).
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
  echo "services: starting moto_server on 127.0.0.1:$s3_port"
  mkdir -p /tmp/switchboard-services
  setsid nohup moto_server -H 127.0.0.1 -p "$s3_port" >/tmp/switchboard-services/moto.log 2>&1 < /dev/null &
fi
wait_for "S3 (moto_server)" s3_answers
echo "services: S3-compatible server is up on 127.0.0.1:$s3_port"
