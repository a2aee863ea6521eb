#!/usr/bin/env bash
# Install the peers `make bench-engine` compares arena's load engine with,
# cached in the git-ignored .tools/ (idempotent; skips what is already there):
#
#   scripts/install-bench-peers.sh [--force]
#
#   vegeta      v12.13.0, `go install github.com/tsenart/vegeta/v12@v12.13.0`
#               from the Go module proxy into .tools/bin/vegeta
#               (default GOPATH/GOMODCACHE/GOCACHE, like build-helm.sh)
#   autocannon  9.x, `npm install --no-save --prefix .tools/peers autocannon@9`
#               (never into the project's package.json)
#               -> .tools/peers/node_modules/.bin/autocannon
#   /usr/bin/time  Debian's `time` package (GNU time, for `-f '%e %U %S %M'`),
#               through apt-get when missing (needs root)
#
#   --force   reinstall vegeta and autocannon even if present
#
# Prints one `[bench]` line per step; exits 1 with `[bench] ERROR: ...` on failure.
set -euo pipefail

VEGETA_VERSION="${VEGETA_VERSION:-v12.13.0}"
VEGETA_MODULE="github.com/tsenart/vegeta/v12"
AUTOCANNON_SPEC="${AUTOCANNON_SPEC:-autocannon@9}"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log()  { printf '[bench] %s\n' "$*"; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$arg' (use --force or --help)" ;;
  esac
done

ensure_tools_dir
mkdir -p "$ARENA_TOOLS/logs"
VEGETA="$ARENA_TOOLS/bin/vegeta"
PEERS="$ARENA_TOOLS/peers"
AUTOCANNON="$PEERS/node_modules/.bin/autocannon"

# --- vegeta -----------------------------------------------------------------
vegeta_version() {
  [[ -x "$VEGETA" ]] || return 0
  # `vegeta -version` prints "Version: v12.13.0" when built with ldflags, but a
  # plain `go install` leaves it at "unknown"; the module info holds the truth.
  go version -m "$VEGETA" 2>/dev/null | awk '$1 == "mod" && $2 == "'"$VEGETA_MODULE"'" { print $3; exit }' || true
}
have="$(vegeta_version)"
if [[ $force -eq 0 && "$have" == "$VEGETA_VERSION" ]]; then
  log "vegeta $VEGETA_VERSION already at ${VEGETA#"$ARENA_ROOT"/}, skipping"
else
  command -v go >/dev/null 2>&1 || die "go not found in PATH; vegeta is built from the Go module proxy"
  log "building vegeta $VEGETA_VERSION (go $(go version | awk '{print $3}'), GOMODCACHE=$(go env GOMODCACHE)); a minute or two on 2 busy cores"
  stage="$(mktemp -d "$ARENA_TOOLS/vegeta-build.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  t0=$SECONDS
  if ! (cd / && CGO_ENABLED=0 GOBIN="$stage" nice -n 10 \
    go install -trimpath -ldflags "-s -w -X main.Version=$VEGETA_VERSION" "$VEGETA_MODULE@$VEGETA_VERSION") \
    >"$ARENA_TOOLS/logs/vegeta-build.log" 2>&1; then
    tail -30 "$ARENA_TOOLS/logs/vegeta-build.log" >&2
    die "go install $VEGETA_MODULE@$VEGETA_VERSION failed (last lines above)"
  fi
  [[ -x "$stage/vegeta" ]] || die "go install succeeded but produced no vegeta binary"
  mv -f "$stage/vegeta" "$VEGETA"
  rm -rf "$stage"
  trap - EXIT
  got="$(vegeta_version)"
  [[ "$got" == "$VEGETA_VERSION" ]] || die "built vegeta reports module version '$got', expected '$VEGETA_VERSION'"
  log "built ${VEGETA#"$ARENA_ROOT"/} $got in $((SECONDS - t0))s"
fi

# --- autocannon -------------------------------------------------------------
ac_version() {
  local pj="$PEERS/node_modules/autocannon/package.json"
  [[ -f "$pj" && -x "$AUTOCANNON" ]] || return 0
  node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$pj" 2>/dev/null || true
}
have="$(ac_version)"
if [[ $force -eq 0 && "$have" == 9.* ]]; then
  log "autocannon $have already at ${AUTOCANNON#"$ARENA_ROOT"/}, skipping"
else
  command -v npm >/dev/null 2>&1 || die "npm not found in PATH"
  log "installing $AUTOCANNON_SPEC into ${PEERS#"$ARENA_ROOT"/} (npm install --no-save --prefix)"
  mkdir -p "$PEERS"
  # A package.json of its own, so npm never walks up to the project's.
  [[ -f "$PEERS/package.json" ]] || printf '{"name":"arena-bench-peers","private":true}\n' >"$PEERS/package.json"
  if ! npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$PEERS" "$AUTOCANNON_SPEC" \
    >"$ARENA_TOOLS/logs/autocannon-install.log" 2>&1; then
    tail -30 "$ARENA_TOOLS/logs/autocannon-install.log" >&2
    die "npm install $AUTOCANNON_SPEC failed (last lines above)"
  fi
  got="$(ac_version)"
  [[ "$got" == 9.* ]] || die "installed autocannon reports version '$got', expected 9.x"
  log "installed autocannon $got at ${AUTOCANNON#"$ARENA_ROOT"/}"
fi

# --- GNU time ---------------------------------------------------------------
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' true >/dev/null 2>&1; then
  log "/usr/bin/time (GNU time) present, skipping"
else
  require_root "installing Debian's 'time' package"
  if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]] ||
    ! apt-cache show time >/dev/null 2>&1; then
    log "apt-get update (package lists missing)"
    apt-get update >"$ARENA_TOOLS/logs/apt-update.log" 2>&1 ||
      { tail -20 "$ARENA_TOOLS/logs/apt-update.log" >&2; die "apt-get update failed"; }
  fi
  log "apt-get install time"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time \
    >"$ARENA_TOOLS/logs/apt-install.log" 2>&1 ||
    { tail -20 "$ARENA_TOOLS/logs/apt-install.log" >&2; die "apt-get install time failed"; }
  /usr/bin/time -f '%M' true >/dev/null 2>&1 || die "/usr/bin/time still missing or not GNU time after install"
  log "installed /usr/bin/time"
fi

env_set ARENA_VEGETA "$VEGETA"
env_set ARENA_AUTOCANNON "$AUTOCANNON"
log "done in $(elapsed)"
