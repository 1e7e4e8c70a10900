#!/usr/bin/env bash
# Prepare this machine's services for the test suite; `make test` and .ci/run both call it.
#
#   PostgreSQL on 127.0.0.1:5432: started if it does not answer; pg_stat_statements appended to
#     shared_preload_libraries (the cluster is restarted only when the running server lacks it, since a
#     restart drops every connection); the `test` database the tests connect to created if missing.
#   Redis on 127.0.0.1:6379: started if it does not answer.
#   Prometheus and Alertmanager: the Debian packages `prometheus` and `prometheus-alertmanager` installed
#     with apt-get when their binaries are missing (the tests start their own copies on free loopback
#     ports; no system service is left running: where the package's postinst started one, it is stopped
#     and disabled again).
#
# Idempotent: a second run changes nothing. It prints exactly one line saying what it changed. Where it
# cannot act (PostgreSQL or Redis not installed, not allowed to manage the cluster) that line says so
# and it still exits 0: the tests that need the missing piece are then reported as skipped, with the reason.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_TEST_DB=test
REDIS_PORT=6379
export PGCONNECT_TIMEOUT=5

changed=()  # what this run did
missing=()  # what it could not do

have() { command -v "$1" >/dev/null 2>&1; }
one_line() { tr '\n' ' ' | sed -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//'; }
wait_for() { for _ in $(seq 1 30); do "$@" && return 0; sleep 1; done; return 1; }

pg_up() {
  if have pg_isready; then pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; else (: <"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null; fi
}
redis_up() {
  if have redis-cli; then
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
  else
    (: <"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null
  fi
}

# Several checkouts on one machine may run this at once: one at a time, so the cluster restarts once.
lock="${TMPDIR:-/tmp}/cf-services.lock"
if have flock && (: >>"$lock") 2>/dev/null; then
  exec 9>>"$lock"
  flock -w 120 9 || true
fi

# --- PostgreSQL ----------------------------------------------------------------------------------

# The local cluster on PG_PORT (Debian/Ubuntu postgresql-common), and whether this user may manage it.
cluster=()
cluster_owner=""
if have pg_lsclusters && have pg_ctlcluster; then
  read -r -a found <<<"$(pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $5; exit }')" || true
  if [[ ${#found[@]} -eq 3 ]]; then
    cluster=("${found[0]}" "${found[1]}")
    cluster_owner="${found[2]}"
  fi
fi
can_manage() { [[ ${#cluster[@]} -eq 2 ]] && { [[ "$(id -u)" == 0 ]] || [[ "$(id -un)" == "$cluster_owner" ]]; }; }
cannot_manage() {  # why this script may not start or restart the server
  if [[ ${#cluster[@]} -eq 0 ]]; then echo "the server on $PG_HOST:$PG_PORT is not a local cluster this script can restart"
  else echo "$(id -un) may not manage cluster ${cluster[*]} (run as root or $cluster_owner)"; fi
}
# (The servers must not inherit the lock's descriptor 9, or they would hold the lock for their lifetime.)
ctl() { pg_ctlcluster --skip-systemctl-redirect "${cluster[@]}" "$@" 9>&- 2>&1 | one_line; return "${PIPESTATUS[0]}"; }

pg_ready=false
if pg_up; then
  pg_ready=true
elif [[ ${#cluster[@]} -eq 0 ]]; then
  missing+=("PostgreSQL is not installed here (no cluster on port $PG_PORT, nothing answers on $PG_HOST:$PG_PORT)")
elif ! can_manage; then
  missing+=("PostgreSQL is down and $(cannot_manage)")
elif out="$(ctl start)" && wait_for pg_up; then
  pg_ready=true
  changed+=("PostgreSQL started")
else
  missing+=("PostgreSQL ${cluster[*]} did not start: ${out:-no answer on $PG_HOST:$PG_PORT after 30 s}")
fi

# A superuser session: over TCP as postgres (what the tests use), else as the postgres OS user (peer).
PSQL=()
if $pg_ready; then
  if ! have psql; then
    missing+=("psql is not installed, so pg_stat_statements could not be checked")
  elif psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -XAtq -c 'SELECT 1' >/dev/null 2>&1; then
    PSQL=(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -XAtq)
  elif [[ "$(id -u)" == 0 ]] && have runuser && runuser -u postgres -- psql -p "$PG_PORT" -d postgres -XAtq -c 'SELECT 1' >/dev/null 2>&1; then
    PSQL=(runuser -u postgres -- psql -p "$PG_PORT" -d postgres -XAtq)
    missing+=("postgres cannot log in to $PG_HOST:$PG_PORT without a password (pg_hba.conf), so the tests cannot either")
  else
    missing+=("cannot log in to PostgreSQL at $PG_HOST:$PG_PORT as postgres")
  fi
fi

has_preload() { [[ ",$("${PSQL[@]}" -c 'SHOW shared_preload_libraries' 2>/dev/null | tr -d ' "')," == *",pg_stat_statements,"* ]]; }

if [[ ${#PSQL[@]} -gt 0 ]] && ! has_preload; then
  preload="$("${PSQL[@]}" -c 'SHOW shared_preload_libraries' | tr -d ' ')" || preload=""
  if [[ -z "$("${PSQL[@]}" -c "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")" ]]; then
    missing+=("pg_stat_statements is not available in this PostgreSQL (install its contrib package)")
  elif ! can_manage; then
    missing+=("pg_stat_statements is not preloaded and $(cannot_manage)")
  elif ! out="$("${PSQL[@]}" -c "ALTER SYSTEM SET shared_preload_libraries = '${preload:+${preload//\'/\'\'},}pg_stat_statements'" 2>&1 | one_line)"; then
    missing+=("could not add pg_stat_statements to shared_preload_libraries: $out")
  elif ! out="$(ctl restart -m fast)" || ! wait_for pg_up; then
    missing+=("PostgreSQL did not come back after the restart to preload pg_stat_statements: ${out:-no answer}")
  elif ! wait_for has_preload; then
    missing+=("pg_stat_statements is still not preloaded after the restart (is shared_preload_libraries set elsewhere?)")
  else
    changed+=("pg_stat_statements preloaded (cluster restarted)")
  fi
fi

if [[ ${#PSQL[@]} -gt 0 ]] && pg_up \
   && [[ -z "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_TEST_DB'" 2>/dev/null)" ]]; then
  if out="$("${PSQL[@]}" -c "CREATE DATABASE \"$PG_TEST_DB\"" 2>&1 | one_line)"; then
    changed+=("database $PG_TEST_DB created")
  else
    missing+=("could not create the $PG_TEST_DB database: $out")
  fi
fi

# --- Redis ---------------------------------------------------------------------------------------

if redis_up; then
  :
elif ! have redis-server; then
  missing+=("Redis is not installed here (no redis-server, nothing answers on 127.0.0.1:$REDIS_PORT)")
elif out="$(redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no 9>&- 2>&1 | one_line)" \
     && wait_for redis_up; then
  changed+=("Redis started")
else
  missing+=("Redis did not start on 127.0.0.1:$REDIS_PORT: ${out:-no answer after 30 s}")
fi

# --- Prometheus and Alertmanager ----------------------------------------------------------------

# Only the binaries are wanted: tests/prometheus_support.py runs them itself on free ports with temp data dirs.
PROM_PACKAGES=(prometheus prometheus-alertmanager)
prom_present() { have prometheus && have promtool && have prometheus-alertmanager; }
SUDO=()  # root runs apt-get itself; anyone else only with password-less sudo
APT=()
if [[ "$(id -u)" == 0 ]]; then APT=(apt-get); elif have sudo && sudo -n true 2>/dev/null; then SUDO=(sudo -n); APT=(sudo -n apt-get); fi
apt_install() {
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
    -o DPkg::Lock::Timeout=300 "${PROM_PACKAGES[@]}" 9>&- </dev/null 2>&1
}
# A system with systemd may start the packages' own services on 9090/9093: stop and disable what this run started.
quiet_services() {
  have systemctl && [[ -d /run/systemd/system ]] || return 0
  local unit
  for unit in prometheus prometheus-alertmanager; do
    "${SUDO[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
}

if prom_present; then
  :
elif ! have apt-get; then
  missing+=("Prometheus and Alertmanager are not installed and this is not a Debian-like system (install prometheus and prometheus-alertmanager)")
elif [[ ${#APT[@]} -eq 0 ]]; then
  missing+=("Prometheus and Alertmanager are not installed and $(id -un) may not run apt-get (run as root: apt-get install ${PROM_PACKAGES[*]})")
else
  started=$SECONDS
  if ! out="$(apt_install)" && [[ "$out" == *"Unable to locate package"* ]]; then
    out="$(DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -qq 9>&- </dev/null 2>&1 && apt_install)" || true
  fi
  quiet_services
  if prom_present; then
    changed+=("Prometheus and Alertmanager installed with apt-get ($((SECONDS - started)) s)")
  else
    missing+=("apt-get could not install ${PROM_PACKAGES[*]}: $(printf '%s' "$out" | tail -n 3 | one_line)")
  fi
fi

# --- the one line --------------------------------------------------------------------------------

join() { local out="$1" part; shift; for part in "$@"; do out+="; $part"; done; printf '%s' "$out"; }
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "services: $(join "${changed[@]}" "${missing[@]}") — tests that need it will be skipped"
elif [[ ${#changed[@]} -gt 0 ]]; then
  echo "services: $(join "${changed[@]}")"
else
  echo "services: PostgreSQL, Redis, Prometheus and Alertmanager ready, nothing changed"
fi
