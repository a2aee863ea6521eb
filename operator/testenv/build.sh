#!/usr/bin/env bash
# Build the arena-testenv binary (etcd + kube-apiserver + kube-controller-manager
# in one process) into <repo>/.tools/bin/arena-testenv.
#
# Idempotent: the build is skipped when <repo>/.tools/bin/arena-testenv.stamp
# holds the sha256 of go.mod, go.sum and every *.go file of this folder (plus
# the Go version) and the binary exists. --force rebuilds anyway.
# The first build compiles k8s.io/kubernetes: ~10-25 min on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="$repo/.tools/bin"
bin="$bin_dir/arena-testenv"
stamp="$bin.stamp"

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  -h|--help) echo "usage: $0 [--force]"; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

command -v go >/dev/null 2>&1 || { echo "build.sh: 'go' not found in PATH" >&2; exit 1; }

# Inputs of the build: module files, sources, toolchain version.
digest() {
  (
    cd "$here"
    go version
    find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print \
      | LC_ALL=C sort | xargs sha256sum
  ) | sha256sum | cut -d' ' -f1
}
want="$(digest)"

if [[ $force -eq 0 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "arena-testenv is up to date: $bin"
  exit 0
fi

# Kubernetes version from go.mod, stamped into the binary so that /version
# reports it (kubectl and client libraries read it).
k8s_version="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"
if [[ -z "$k8s_version" ]]; then
  echo "build.sh: cannot find the k8s.io/kubernetes version in go.mod" >&2
  exit 1
fi
major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

mkdir -p "$bin_dir"
echo "building arena-testenv (Kubernetes $k8s_version; first build takes several minutes)..."
start=$(date +%s)
(
  cd "$here"
  # -mod=mod: go.sum is committed, but let go fill in anything missing
  # instead of failing.
  GOFLAGS="${GOFLAGS:-} -mod=mod" \
    go build -trimpath -ldflags="$ldflags" -o "$bin.tmp" .
)
mv -f "$bin.tmp" "$bin"
echo "$want" > "$stamp"
end=$(date +%s)
size=$(du -h "$bin" | cut -f1)
echo "built $bin ($size) in $((end - start))s"
