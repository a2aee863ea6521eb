#!/usr/bin/env bash
# Smoke-check the Debian-installed postgres, pgbouncer and redis by running
# throwaway servers on non-default loopback ports from a temp dir, as the
# unprivileged user `arena`:
#
#   postgres  127.0.0.1:55432  initdb + pg_ctl start, psql 'select 1'
#   pgbouncer 127.0.0.1:56432  -> that postgres; admin 'SHOW POOLS' + a pooled query
#   redis     127.0.0.1:56379  redis-cli ping / set / get
#
# Everything is stopped by PID (never by process name) and the temp dir is
# removed, also on failure. Exit status is non-zero if any check fails.
# Ports can be moved with SMOKE_PG_PORT / SMOKE_PGB_PORT / SMOKE_REDIS_PORT.
# Needs root (to switch to `arena`); run scripts/install-debian-deps.sh first.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${SMOKE_PG_PORT:-55432}"
PGB_PORT="${SMOKE_PGB_PORT:-56432}"
REDIS_PORT="${SMOKE_REDIS_PORT:-56379}"

require_root "smoke-db-tools.sh (it runs the servers via runuser -u $ARENA_USER)"
arena_user_exists || die "system user '$ARENA_USER' is missing; run scripts/install-debian-deps.sh first"

PG_BIN="$(pg_bin_dir)" || die "no /usr/lib/postgresql/*/bin/postgres; run scripts/install-debian-deps.sh first"
PSQL="$(command -v psql || true)"
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
REDIS_SERVER="$(command -v redis-server || true)"
REDIS_CLI="$(command -v redis-cli || true)"
[[ -n "$PSQL" ]] || die "psql not found; run scripts/install-debian-deps.sh first"
[[ -x "$PGBOUNCER" ]] || die "pgbouncer not found; run scripts/install-debian-deps.sh first"
[[ -n "$REDIS_SERVER" && -n "$REDIS_CLI" ]] || die "redis-server/redis-cli not found; run scripts/install-debian-deps.sh first"

for p in "$PG_PORT" "$PGB_PORT" "$REDIS_PORT"; do
  port_listening "$p" && die "port $p is already in use; free it or set SMOKE_PG_PORT/SMOKE_PGB_PORT/SMOKE_REDIS_PORT"
done

as_arena() { runuser -u "$ARENA_USER" -- "$@"; }

WORK="$(mktemp -d /tmp/arena-smoke.XXXXXX)"
chown "$ARENA_USER:$ARENA_USER" "$WORK"
chmod 700 "$WORK"
cd "$WORK" # postgres tools complain when the cwd is unreadable for arena

pg_pid="" pgb_pid="" redis_pid=""
failed=0

# wait_gone PID SECONDS: true once the process has exited.
wait_gone() {
  local pid="$1" i
  for ((i = 0; i < ${2:-10} * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# stop_pid NAME PID SIGNAL: polite signal, then SIGKILL after 10 s. By PID only.
stop_pid() {
  local name="$1" pid="$2" sig="$3"
  [[ -n "$pid" ]] || return 0
  pid_alive "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 10; then
    warn "$name (pid $pid) ignored SIG$sig, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || warn "$name (pid $pid) is still running"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  cd /
  stop_pid redis "$redis_pid" TERM
  stop_pid pgbouncer "$pgb_pid" TERM # immediate shutdown; nothing in flight
  if [[ -n "$pg_pid" ]] && pid_alive "$pg_pid"; then
    as_arena "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    stop_pid postgres "$pg_pid" INT # fallback; no-op if pg_ctl stopped it
  fi
  if [[ $rc -ne 0 || $failed -ne 0 ]]; then
    for f in "$WORK"/*.log; do
      [[ -f "$f" ]] || continue
      [[ "$f" == */initdb.log && -n "$pg_pid" ]] && continue # initdb worked
      printf '[setup] ---- last lines of %s ----\n' "$(basename "$f")" >&2
      tail -15 "$f" >&2 || true
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # check NAME CMD...: run CMD, record failure, keep going
  local name="$1"
  shift
  if "$@"; then
    log "  ok   $name"
  else
    log "  FAIL $name"
    failed=1
  fi
}

# ---------------------------------------------------------------- postgres
log "postgres: initdb in $WORK/pg ($PG_BIN)"
as_arena "$PG_BIN/initdb" -D "$WORK/pg" -U "$ARENA_USER" --auth=trust -E UTF8 --no-sync \
  >"$WORK/initdb.log" 2>&1 || die "initdb failed (log below)"

log "postgres: starting on 127.0.0.1:$PG_PORT"
as_arena "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$WORK -c fsync=off" \
  start >"$WORK/pg_ctl.log" 2>&1 || true
[[ -f "$WORK/pg/postmaster.pid" ]] && pg_pid="$(head -1 "$WORK/pg/postmaster.pid")"
if [[ -z "$pg_pid" ]] || ! pid_alive "$pg_pid"; then
  die "postgres did not start on 127.0.0.1:$PG_PORT (logs below)"
fi
log "postgres: running, pid $pg_pid"

pg_select1() {
  local out
  out="$("$PSQL" -X -h 127.0.0.1 -p "$PG_PORT" -U "$ARENA_USER" -d postgres -Atc 'select 1' 2>&1)"
  [[ "$out" == 1 ]] || { warn "psql said: $out"; return 1; }
}
check "psql -h 127.0.0.1 -p $PG_PORT -U $ARENA_USER -c 'select 1'" pg_select1
pg_version="$("$PSQL" -X -h 127.0.0.1 -p "$PG_PORT" -U "$ARENA_USER" -d postgres -Atc 'show server_version' 2>/dev/null || true)"

# ---------------------------------------------------------------- pgbouncer
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
postgres = host=127.0.0.1 port=$PG_PORT dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $WORK
auth_type = trust
auth_file = $WORK/userlist.txt
admin_users = $ARENA_USER
pool_mode = transaction
max_client_conn = 20
default_pool_size = 2
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
printf '"%s" ""\n' "$ARENA_USER" >"$WORK/userlist.txt"
chown "$ARENA_USER:$ARENA_USER" "$WORK/pgbouncer.ini" "$WORK/userlist.txt"

log "pgbouncer: starting on 127.0.0.1:$PGB_PORT -> postgres :$PG_PORT"
as_arena "$PGBOUNCER" -d "$WORK/pgbouncer.ini" >"$WORK/pgbouncer-start.log" 2>&1 ||
  die "pgbouncer failed to start on 127.0.0.1:$PGB_PORT (logs below)"
for _ in $(seq 1 50); do [[ -s "$WORK/pgbouncer.pid" ]] && break; sleep 0.1; done
pgb_pid="$(cat "$WORK/pgbouncer.pid" 2>/dev/null || true)"
[[ -n "$pgb_pid" ]] || die "pgbouncer wrote no pidfile (logs below)"
wait_for_port "$PGB_PORT" 10 || die "pgbouncer (pid $pgb_pid) is not listening on $PGB_PORT"
log "pgbouncer: running, pid $pgb_pid"

pgb_show_pools() {
  local out
  out="$("$PSQL" -X -h 127.0.0.1 -p "$PGB_PORT" -U "$ARENA_USER" -d pgbouncer -c 'SHOW POOLS' 2>&1)"
  grep -q 'database' <<<"$out" || { warn "psql said: $out"; return 1; }
}
pgb_pooled_query() {
  local out
  out="$("$PSQL" -X -h 127.0.0.1 -p "$PGB_PORT" -U "$ARENA_USER" -d postgres -Atc 'select 40 + 2' 2>&1)"
  [[ "$out" == 42 ]] || { warn "psql said: $out"; return 1; }
}
check "psql -p $PGB_PORT pgbouncer -c 'SHOW POOLS' (admin console)" pgb_show_pools
check "psql -p $PGB_PORT postgres -c 'select 40 + 2' (pooled to :$PG_PORT)" pgb_pooled_query
pgb_version="$("$PGBOUNCER" --version 2>/dev/null | head -1 | sed 's/^PgBouncer //' || true)"

# ---------------------------------------------------------------- redis
log "redis: starting on 127.0.0.1:$REDIS_PORT"
as_arena "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
  --pidfile "$WORK/redis.pid" --dir "$WORK" --logfile "$WORK/redis.log" \
  --save '' --appendonly no >"$WORK/redis-start.log" 2>&1 ||
  die "redis-server failed to start on 127.0.0.1:$REDIS_PORT (logs below)"
for _ in $(seq 1 50); do [[ -s "$WORK/redis.pid" ]] && break; sleep 0.1; done
redis_pid="$(cat "$WORK/redis.pid" 2>/dev/null || true)"
[[ -n "$redis_pid" ]] || die "redis-server wrote no pidfile (logs below)"
wait_for_port "$REDIS_PORT" 10 || die "redis (pid $redis_pid) is not listening on $REDIS_PORT"
log "redis: running, pid $redis_pid"

redis_ping() {
  local out
  out="$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1)"
  [[ "$out" == PONG ]] || { warn "redis-cli said: $out"; return 1; }
}
redis_set_get() {
  local out
  "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" set arena:smoke ok >/dev/null 2>&1 || return 1
  out="$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" get arena:smoke 2>&1)"
  [[ "$out" == ok ]] || { warn "redis-cli said: $out"; return 1; }
}
check "redis-cli -p $REDIS_PORT ping" redis_ping
check "redis-cli -p $REDIS_PORT set/get" redis_set_get
redis_version="$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version://p')"

# ---------------------------------------------------------------- result
if [[ $failed -ne 0 ]]; then
  die "smoke checks failed (see FAIL lines above)"
fi
log "all smoke checks passed: postgres ${pg_version:-?}, pgbouncer ${pgb_version:-?}, redis ${redis_version:-?} ($(elapsed))"
