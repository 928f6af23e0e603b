#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer, installing (Debian packages) and starting the local
# ones when needed. With DATABASE_URL / AMQP_URL pointing elsewhere, it only checks they answer.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_for() { # host port what seconds
  for _ in $(seq 1 "$4"); do answers "$1" "$2" && return 0; sleep 1; done
  echo "$3 does not answer on $1:$2" >&2; return 1
}
host_of() { python3 -c "import sys, urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname or '127.0.0.1', p.port or sys.argv[2])" "$1" "$2"; }
apt_install() {
  command -v apt-get >/dev/null || { echo "cannot install $*: no apt-get" >&2; return 1; }
  [ "$(id -u)" = 0 ] || { echo "installing $* needs root" >&2; return 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

read -r pg_host pg_port < <(host_of "${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}" 5432)
read -r mq_host mq_port < <(host_of "${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}" 5672)

if ! answers "$pg_host" "$pg_port"; then
  if [ -n "${DATABASE_URL:-}" ] && [ "$pg_host" != 127.0.0.1 ] && [ "$pg_host" != localhost ]; then
    echo "PostgreSQL at $DATABASE_URL does not answer" >&2; exit 1
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL..."; apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    # Local development server: trust connections from this machine only.
    sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(local\s+all\s+postgres\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  echo "starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  wait_for "$pg_host" "$pg_port" PostgreSQL 60
fi

if ! answers "$mq_host" "$mq_port"; then
  if [ -n "${AMQP_URL:-}" ] && [ "$mq_host" != 127.0.0.1 ] && [ "$mq_host" != localhost ]; then
    echo "RabbitMQ at $AMQP_URL does not answer" >&2; exit 1
  fi
  command -v rabbitmq-server >/dev/null || { echo "installing RabbitMQ..."; apt_install rabbitmq-server; }
  echo "starting RabbitMQ..."
  rabbitmq-server -detached || true
  wait_for "$mq_host" "$mq_port" RabbitMQ 120
  command -v rabbitmqctl >/dev/null && rabbitmqctl -q await_startup --timeout 120 || true
fi
echo "PostgreSQL ($pg_host:$pg_port) and RabbitMQ ($mq_host:$mq_port) answer."
