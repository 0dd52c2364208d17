#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on this machine: starts them when installed, installs them
# with apt when we are root on Debian, and otherwise says exactly what is missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

apt_install() {
  echo "installing $* with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  pg_up && return 0
  if ! command -v pg_ctlcluster >/dev/null; then
    can_apt || { echo "PostgreSQL is not running and not installed: install 'postgresql' (Debian) and start it on 127.0.0.1:5432 with trust auth for user postgres" >&2; exit 1; }
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster "$version" main start
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  pg_up || { echo "PostgreSQL $version did not start; see /var/log/postgresql/" >&2; exit 1; }
  # A fresh Debian cluster uses peer auth; the project connects over TCP as postgres.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "titanflow" "$hba"; then
    sed -i '1i host all postgres 127.0.0.1/32 trust # titanflow local development\nhost all postgres ::1/128 trust # titanflow local development' "$hba"
    pg_ctlcluster "$version" main reload
  fi
}

ensure_redis() {
  redis_up && return 0
  if ! command -v redis-server >/dev/null; then
    can_apt || { echo "Redis is not running and not installed: install 'redis-server' (Debian) and start it on 127.0.0.1:6379" >&2; exit 1; }
    apt_install redis-server
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$(test -w /var/lib/redis && echo /var/lib/redis || echo /tmp)" \
    --logfile "$(test -w /var/log/redis && echo /var/log/redis/titanflow.log || echo /tmp/redis-titanflow.log)"
  for _ in $(seq 1 20); do redis_up && break; sleep 0.25; done
  redis_up || { echo "Redis did not start" >&2; exit 1; }
}

ensure_postgres
ensure_redis
echo "PostgreSQL and Redis are up" >&2
