#!/usr/bin/env bash
# Install the Debian packages the arena stack runs by hand, idempotently.
#
#   scripts/install-debian-deps.sh [GROUP...]      (default group: db)
#
# Groups:
#   db        = postgres + pgbouncer + redis
#   postgres  = postgresql (server, Debian 12: 15) + postgresql-client (psql)
#   pgbouncer = pgbouncer + postgresql-client
#   redis     = redis-server + redis-tools (redis-cli)
#   chromium  = chromium + chromium-driver + fonts-liberation
#   xml       = libxml2-utils (xmllint: tests validate junit.xml against junit-10.xsd)
#
# - Packages already installed (dpkg-query) are skipped; when nothing is
#   missing apt-get is not called at all.
# - The Debian packages' own services (postgresql cluster on 5432, pgbouncer on
#   6432, redis on 6379) are kept from starting during the install
#   (policy-rc.d exit 101), disabled afterwards, stopped if they run anyway,
#   and the script fails if anything still listens on 5432/6432/6379.
# - Ensures the unprivileged system user `arena` (postgres and pgbouncer
#   refuse to run as root; use `runuser -u arena -- CMD`).
# - Writes the binary paths to .tools/env.sh (source it).
#
# Check the servers actually run with scripts/smoke-db-tools.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

# ---------------------------------------------------------------- arguments
groups=()
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    db) groups+=(postgres pgbouncer redis) ;;
    postgres | postgresql | pg) groups+=(postgres) ;;
    pgbouncer) groups+=(pgbouncer) ;;
    redis) groups+=(redis) ;;
    chromium) groups+=(chromium) ;;
    xml) groups+=(xml) ;;
    *) die "unknown package group '$arg' (known: db postgres pgbouncer redis chromium xml)" ;;
  esac
done
[[ ${#groups[@]} -gt 0 ]] || groups=(postgres pgbouncer redis)

has_group() {
  local g
  for g in "${groups[@]}"; do [[ "$g" == "$1" ]] && return 0; done
  return 1
}

packages=()
has_group postgres && packages+=(postgresql postgresql-client)
has_group pgbouncer && packages+=(pgbouncer postgresql-client)
has_group redis && packages+=(redis-server redis-tools)
has_group chromium && packages+=(chromium chromium-driver fonts-liberation)
has_group xml && packages+=(libxml2-utils)
# de-duplicate, keep order
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')

log "groups: $(printf '%s\n' "${groups[@]}" | awk '!s[$0]++' | paste -sd' ')"

# ---------------------------------------------------------------- what is missing
installed_ok() {
  # prints the names among "$@" that dpkg reports as fully installed
  dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 == "ii" { print $1 }'
}
mapfile -t have < <(installed_ok "${packages[@]}")
missing=()
for p in "${packages[@]}"; do
  found=0
  for h in "${have[@]}"; do [[ "$h" == "$p" || "$h" == "$p:"* ]] && found=1 && break; done
  [[ $found -eq 1 ]] || missing+=("$p")
done

# ---------------------------------------------------------------- service helpers
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP="$POLICY.arena-backup"
policy_state=""   # "", "preexisting", "created", "replaced"

restore_policy() {
  case "$policy_state" in
    created) rm -f "$POLICY" ;;
    replaced) mv -f "$POLICY_BACKUP" "$POLICY" ;;
  esac
  policy_state=""
}

block_service_starts() {
  local rc=0
  if [[ -x "$POLICY" ]]; then
    "$POLICY" arena-probe start >/dev/null 2>&1 || rc=$?
    if [[ $rc -eq 101 ]]; then
      policy_state=preexisting
      log "policy-rc.d already denies service starts ($POLICY)"
      return 0
    fi
    mv -f "$POLICY" "$POLICY_BACKUP"
    policy_state=replaced
  else
    policy_state=created
  fi
  printf '#!/bin/sh\n# temporary, written by arena scripts/install-debian-deps.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  log "installed temporary $POLICY (exit 101) so packages do not start services"
}
trap restore_policy EXIT

systemd_running() { [[ -d /run/systemd/system ]]; }

# stop_service NAME: stop a Debian service without going through policy-rc.d.
stop_service() {
  local name="$1"
  if systemd_running; then
    systemctl stop "$name" >/dev/null 2>&1 || true
  elif [[ -x "/etc/init.d/$name" ]]; then
    "/etc/init.d/$name" stop >/dev/null 2>&1 || true
  fi
}

# disable_service NAME: keep it from starting at boot (sysv links + systemd).
disable_service() {
  local name="$1"
  if command -v update-rc.d >/dev/null 2>&1 && [[ -x "/etc/init.d/$name" ]]; then
    update-rc.d "$name" disable >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable "$name" >/dev/null 2>&1 || true
  fi
}

# Debian's postgresql-common starts every cluster whose start.conf is "auto".
disable_pg_clusters() {
  local f
  for f in /etc/postgresql/*/*/start.conf; do
    [[ -f "$f" ]] || continue
    if grep -qx 'auto' "$f"; then
      sed -i 's/^auto$/manual/' "$f"
      log "set $f to 'manual' (Debian cluster no longer auto-starts)"
    fi
  done
  disable_service postgresql
}

stop_pg_clusters() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local ver name port status
  while read -r ver name port status _; do
    if [[ "$status" == online* ]]; then
      log "stopping Debian cluster $ver/$name (port $port)"
      pg_ctlcluster "$ver" "$name" stop -m fast >/dev/null 2>&1 || warn "pg_ctlcluster $ver $name stop failed"
    fi
  done < <(pg_lsclusters -h 2>/dev/null || true)
}

listener_info() {
  # best effort description of whatever listens on $1
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | head -3
  fi
}

# ---------------------------------------------------------------- install
if [[ ${#missing[@]} -gt 0 ]]; then
  require_root "installing ${missing[*]}"
  log "missing packages: ${missing[*]}"
  block_service_starts
  mkdir -p "$ARENA_TOOLS/logs"
  ensure_tools_dir
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  log "apt-get update"
  t0=$SECONDS
  if ! apt-get "${apt_opts[@]}" update >"$ARENA_TOOLS/logs/apt-update.log" 2>&1; then
    tail -20 "$ARENA_TOOLS/logs/apt-update.log" >&2
    die "apt-get update failed (full log: ${TMPDIR:-/tmp}/arena-apt-update.log)"
  fi
  log "apt-get install --no-install-recommends ${missing[*]}"
  if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
      >"$ARENA_TOOLS/logs/apt-install.log" 2>&1; then
    tail -30 "$ARENA_TOOLS/logs/apt-install.log" >&2
    die "apt-get install ${missing[*]} failed (full log: ${TMPDIR:-/tmp}/arena-apt-install.log)"
  fi
  log "installed ${#missing[@]} package(s) in $((SECONDS - t0))s"
  restore_policy
  # keep the packaged services from starting later (boot, service ... start)
  has_group postgres && disable_pg_clusters
  has_group pgbouncer && disable_service pgbouncer
  has_group redis && disable_service redis-server
else
  log "all ${#packages[@]} package(s) already installed: ${packages[*]} (apt-get not called)"
fi

# ---------------------------------------------------------------- default ports must be free
declare -A port_service=([5432]=postgresql [6432]=pgbouncer [6379]=redis-server)
for port in 5432 6432 6379; do
  port_listening "$port" || continue
  svc="${port_service[$port]}"
  [[ "$(id -u)" -eq 0 ]] || die "something listens on 127.0.0.1:$port (Debian $svc?); run this script as root to stop it"
  log "port $port is in use, stopping the Debian $svc service"
  if [[ "$svc" == postgresql ]]; then
    stop_pg_clusters
    stop_service postgresql
  else
    stop_service "$svc"
  fi
  for _ in $(seq 1 50); do port_listening "$port" || break; sleep 0.1; done
  if port_listening "$port"; then
    info="$(listener_info "$port")"
    die "port $port still has a listener after stopping $svc; it is not ours to kill, stop it by hand: ${info:-see 'ss -ltnp'}"
  fi
done
log "default ports 5432/6432/6379 are free"

# ---------------------------------------------------------------- unprivileged user
if has_group postgres || has_group pgbouncer || has_group redis; then
  if ! arena_user_exists; then
    require_root "creating system user '$ARENA_USER'"
    nologin=/usr/sbin/nologin
    [[ -x "$nologin" ]] || nologin=/bin/false
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell "$nologin" --comment "arena local test servers" "$ARENA_USER" ||
      die "useradd $ARENA_USER failed"
    log "created system user '$ARENA_USER' (uid $(id -u "$ARENA_USER"))"
  else
    log "system user '$ARENA_USER' exists (uid $(id -u "$ARENA_USER"))"
  fi
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u "$ARENA_USER" -- true || die "runuser -u $ARENA_USER -- true failed"
  fi
fi

# ---------------------------------------------------------------- paths, versions, env.sh
ensure_tools_dir
summary=()
add_summary() { summary+=("$(printf '%-13s %-40s %s' "$1" "$2" "$3")"); }
first_line() { "$@" 2>&1 | head -1 || true; }

if has_group postgres || has_group pgbouncer; then
  psql_bin="$(command -v psql || true)"
  [[ -n "$psql_bin" ]] || die "psql not found after installing postgresql-client"
  env_set ARENA_PSQL "$psql_bin"
  add_summary psql "$(first_line "$psql_bin" --version | sed 's/^psql (PostgreSQL) //')" "$psql_bin"
fi
if has_group postgres; then
  pg_bin="$(pg_bin_dir)" || die "no /usr/lib/postgresql/*/bin/postgres found although postgresql is installed"
  for b in initdb postgres pg_ctl pg_isready; do
    [[ -x "$pg_bin/$b" ]] || die "$pg_bin/$b is missing"
  done
  env_set ARENA_PG_BIN "$pg_bin"
  add_summary postgres "$(first_line "$pg_bin/postgres" --version | sed 's/^postgres (PostgreSQL) //')" "$pg_bin/{initdb,postgres,pg_ctl}"
fi
if has_group pgbouncer; then
  pgb="$(command -v pgbouncer || true)"
  [[ -n "$pgb" ]] || pgb=/usr/sbin/pgbouncer
  [[ -x "$pgb" ]] || die "pgbouncer binary not found (expected /usr/sbin/pgbouncer)"
  env_set ARENA_PGBOUNCER "$pgb"
  add_summary pgbouncer "$(first_line "$pgb" --version | sed 's/^PgBouncer //')" "$pgb"
fi
if has_group redis; then
  rs="$(command -v redis-server || true)"
  rc="$(command -v redis-cli || true)"
  [[ -n "$rs" && -n "$rc" ]] || die "redis-server/redis-cli not found after installing redis-server redis-tools"
  env_set ARENA_REDIS_SERVER "$rs"
  env_set ARENA_REDIS_CLI "$rc"
  add_summary redis-server "$(first_line "$rs" --version | sed -E 's/^Redis server v=([^ ]+).*/\1/')" "$rs"
  add_summary redis-cli "$(first_line "$rc" --version | sed 's/^redis-cli //')" "$rc"
fi
if has_group postgres || has_group pgbouncer || has_group redis; then
  env_set ARENA_RUN_AS_USER "$ARENA_USER"
fi
if has_group chromium; then
  cr="$(command -v chromium || true)"
  cd_="$(command -v chromedriver || true)"
  [[ -n "$cr" && -n "$cd_" ]] || die "chromium/chromedriver not found after installing chromium chromium-driver"
  env_set ARENA_CHROMIUM "$cr"
  env_set ARENA_CHROMEDRIVER "$cd_"
  # the Debian launcher may print shell noise on stderr (/etc/chromium.d/dev-shm)
  add_summary chromium "$("$cr" --version 2>/dev/null | sed -n 's/^Chromium \([^ ]*\).*/\1/p' | head -1)" "$cr"
  add_summary chromedriver "$(first_line "$cd_" --version | awk '{print $2}')" "$cd_"
fi
if has_group xml; then
  xl="$(command -v xmllint || true)"
  [[ -n "$xl" ]] || die "xmllint not found after installing libxml2-utils"
  env_set ARENA_XMLLINT "$xl"
  add_summary xmllint "$(first_line "$xl" --version | sed -E 's/^.*using libxml version ([^ ]+).*/\1/')" "$xl"
fi

log "tools:"
for line in "${summary[@]}"; do log "  $line"; done
log "paths recorded in ${ARENA_ENV_FILE#"$ARENA_ROOT"/} (source it)"
log "done in $(elapsed)"
