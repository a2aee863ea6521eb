#!/usr/bin/env bash
# Build helm from the Go module proxy (no binary download) into .tools/bin/helm.
#
#   scripts/build-helm.sh [--force] [--verify]
#
#   --force   rebuild even if .tools/bin/helm already reports $HELM_VERSION
#   --verify  also run the create/lint/template check when nothing is rebuilt
#
# Skips the build when .tools/bin/helm already reports the pinned version.
# Uses the default GOPATH/GOMODCACHE (override through the usual Go env vars).
# After a build it checks `helm version`, `helm create`, `helm lint` and
# `helm template` in a temp dir, then removes it.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM_MODULE="helm.sh/helm/v3"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=0 verify=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --verify) verify=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$arg' (use --force, --verify or --help)" ;;
  esac
done

BIN_DIR="$ARENA_TOOLS/bin"
HELM="$BIN_DIR/helm"

installed_version() {
  [[ -x "$HELM" ]] || return 0
  "$HELM" version --template '{{.Version}}' 2>/dev/null || true
}

stage="" check_dir=""
cleanup() { rm -rf "${stage:-}" "${check_dir:-}"; }
trap cleanup EXIT

verify_helm() {
  local tmp out
  check_dir="$(mktemp -d /tmp/arena-helm-check.XXXXXX)"
  tmp="$check_dir"
  # keep helm's cache/config/data out of $HOME during the check
  export HELM_CACHE_HOME="$tmp/cache" HELM_CONFIG_HOME="$tmp/config" HELM_DATA_HOME="$tmp/data"
  out="$("$HELM" version 2>&1)" || die "'helm version' failed: $out"
  log "helm version: $out"
  out="$("$HELM" create "$tmp/x" 2>&1)" || die "'helm create' failed: $out"
  out="$("$HELM" lint "$tmp/x" 2>&1)" || die "'helm lint' failed: $out"
  grep -q '1 chart(s) linted, 0 chart(s) failed' <<<"$out" || die "unexpected 'helm lint' output: $out"
  out="$("$HELM" template smoke "$tmp/x" 2>&1)" || die "'helm template' failed: $out"
  grep -q '^kind: Deployment' <<<"$out" || die "'helm template' rendered no Deployment: $out"
  log "helm create/lint/template check passed ($(grep -c '^kind:' <<<"$out") manifests rendered)"
  unset HELM_CACHE_HOME HELM_CONFIG_HOME HELM_DATA_HOME
  rm -rf "$check_dir"
  check_dir=""
}

ensure_tools_dir
have="$(installed_version)"
if [[ $force -eq 0 && "$have" == "$HELM_VERSION" ]]; then
  log "helm $HELM_VERSION already built at ${HELM#"$ARENA_ROOT"/}, skipping (--force to rebuild)"
  [[ $verify -eq 1 ]] && verify_helm
  env_set ARENA_HELM "$HELM"
  log "done in $(elapsed)"
  exit 0
fi
if [[ -n "$have" ]]; then
  if [[ "$have" == "$HELM_VERSION" ]]; then
    log "--force: rebuilding helm $HELM_VERSION"
  else
    log "found helm $have at ${HELM#"$ARENA_ROOT"/}, want $HELM_VERSION: rebuilding"
  fi
fi

command -v go >/dev/null 2>&1 || die "go not found in PATH; helm is built from source with the Go toolchain"
log "go: $(go version | awk '{print $3, $4}'), GOMODCACHE=$(go env GOMODCACHE), GOPROXY=$(go env GOPROXY)"

# Resolve the module (also fetches its go.mod) to read the client-go version:
# helm's Makefile derives the default Kubernetes version for
# .Capabilities.KubeVersion and lint deprecation checks from it.
log "resolving $HELM_MODULE@$HELM_VERSION from the module proxy"
if ! modjson="$(cd / && go mod download -json "$HELM_MODULE@$HELM_VERSION" 2>&1)"; then
  die "go mod download $HELM_MODULE@$HELM_VERSION failed: $modjson"
fi
moddir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson" | head -1)"
[[ -n "$moddir" && -f "$moddir/go.mod" ]] || die "could not find the module dir of $HELM_MODULE@$HELM_VERSION in: $modjson"
[[ -f "$moddir/internal/version/version.go" ]] ||
  die "$HELM_MODULE@$HELM_VERSION has no internal/version/version.go; the -X ldflags path changed, update build-helm.sh"

ldflags="-s -w"
ldflags+=" -X $HELM_MODULE/internal/version.version=$HELM_VERSION"
ldflags+=" -X $HELM_MODULE/internal/version.gitTreeState=clean"
clientgo="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$moddir/go.mod")"
if [[ "$clientgo" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
  k8s_major=$((BASH_REMATCH[1] + 1)) k8s_minor="${BASH_REMATCH[2]}"
  for pkg in pkg/lint/rules pkg/chartutil; do
    if grep -qs 'k8sVersionMajor' "$moddir/$pkg"/*.go; then
      ldflags+=" -X $HELM_MODULE/$pkg.k8sVersionMajor=$k8s_major -X $HELM_MODULE/$pkg.k8sVersionMinor=$k8s_minor"
    fi
  done
  log "default Kubernetes version for templates/lint: v$k8s_major.$k8s_minor (client-go $clientgo)"
else
  warn "could not read k8s.io/client-go version from $moddir/go.mod; keeping helm's built-in default Kubernetes version"
fi

# Build into a temp GOBIN and move into place, so a failed build never
# leaves a half-written .tools/bin/helm behind.
stage="$(mktemp -d "$ARENA_TOOLS/helm-build.XXXXXX")"
log "building helm $HELM_VERSION (CGO_ENABLED=0 go install -trimpath; this takes minutes on a busy 2-core machine)"
t0=$SECONDS
build_log="$stage/build.log"
if ! (cd / && CGO_ENABLED=0 GOBIN="$stage" nice -n 10 \
  go install -trimpath -ldflags "$ldflags" "$HELM_MODULE/cmd/helm@$HELM_VERSION") >"$build_log" 2>&1; then
  tail -30 "$build_log" >&2
  die "go install $HELM_MODULE/cmd/helm@$HELM_VERSION failed (last lines above)"
fi
[[ -x "$stage/helm" ]] || die "go install succeeded but produced no $stage/helm"
mv -f "$stage/helm" "$HELM"
log "built ${HELM#"$ARENA_ROOT"/} in $((SECONDS - t0))s ($(du -h "$HELM" | cut -f1))"

got="$(installed_version)"
[[ "$got" == "$HELM_VERSION" ]] || die "built helm reports version '$got', expected '$HELM_VERSION'"
verify_helm
env_set ARENA_HELM "$HELM"
log "done in $(elapsed)"
