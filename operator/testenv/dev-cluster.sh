#!/usr/bin/env bash
# Local Kubernetes control plane for development and tests (see README.md).
#
#   dev-cluster.sh up     [--data-dir DIR] [-- EXTRA_BINARY_FLAGS...]
#   dev-cluster.sh down   [--data-dir DIR]
#   dev-cluster.sh status [--data-dir DIR]
#
# Default DIR: <repo>/.tools/dev-cluster. Files in DIR: arena-testenv.pid,
# arena-testenv.log, kubeconfig (present only while the cluster is ready),
# pki/, etcd/.
# Environment: ARENA_TESTENV_TIMEOUT (seconds to wait in up/down, default 120).
# Exit codes: 0 ok, 1 failure (status: not running or not ready), 2 usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="$repo/.tools/bin/arena-testenv"
timeout="${ARENA_TESTENV_TIMEOUT:-120}"

usage() {
  echo "usage: $(basename "$0") up|down|status [--data-dir DIR] [-- EXTRA_FLAGS (up only)]" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in up|down|status) ;; -h|--help|help) usage ;; *) usage ;; esac

data_dir="$repo/.tools/dev-cluster"
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) [[ $# -ge 2 && -n "$2" ]] || usage; data_dir="$2"; shift 2 ;;
    --data-dir=*) data_dir="${1#--data-dir=}"; [[ -n "$data_dir" ]] || usage; shift ;;
    --) shift; [[ "$cmd" == up ]] || usage; extra=("$@"); break ;;
    *) usage ;;
  esac
done
[[ "$timeout" =~ ^[0-9]+$ ]] || { echo "ARENA_TESTENV_TIMEOUT must be a number of seconds" >&2; exit 2; }

mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
pid_file="$data_dir/arena-testenv.pid"
log_file="$data_dir/arena-testenv.log"
kubeconfig="$data_dir/kubeconfig"

# Prints the PID from the PID file if that process is alive and is really
# arena-testenv (guards against a recycled PID). Never looks processes up by name.
running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'arena-testenv' || return 1
  fi
  echo "$pid"
}

readyz() {
  command -v kubectl >/dev/null 2>&1 || { echo "(kubectl not found: readyz not checked)"; return 0; }
  kubectl --kubeconfig "$kubeconfig" --request-timeout=5s get --raw /readyz
}

print_access() {
  echo "kubeconfig: $kubeconfig"
  echo "export KUBECONFIG=$kubeconfig"
}

show_log_tail() {
  echo "---- last 40 lines of $log_file ----" >&2
  tail -n 40 "$log_file" >&2 || true
}

wait_exit() { # pid seconds
  local pid="$1" deadline=$(( $(date +%s) + $2 ))
  while kill -0 "$pid" 2>/dev/null; do
    [[ $(date +%s) -lt $deadline ]] || return 1
    sleep 0.5
  done
  return 0
}

wait_ready() { # pid
  local pid="$1" deadline=$(( $(date +%s) + timeout ))
  while true; do
    if grep -q '^ready kubeconfig=' "$log_file" 2>/dev/null && [[ -f "$kubeconfig" ]]; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "arena-testenv (pid $pid) exited before becoming ready" >&2
      show_log_tail
      rm -f "$pid_file"
      return 1
    fi
    if [[ $(date +%s) -ge $deadline ]]; then
      echo "arena-testenv not ready after ${timeout}s; stopping it" >&2
      show_log_tail
      kill -TERM "$pid" 2>/dev/null || true
      wait_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$pid_file"
      return 1
    fi
    sleep 0.5
  done
}

do_up() {
  local pid
  if pid="$(running_pid)"; then
    echo "arena-testenv already running (pid $pid, data dir $data_dir)"
    wait_ready "$pid" || exit 1
    print_access
    exit 0
  fi
  rm -f "$pid_file"
  "$here/build.sh" || { echo "build failed" >&2; exit 1; }

  echo "starting arena-testenv (data dir $data_dir, log $log_file)..."
  # setsid: own session, so a Ctrl-C in the calling terminal does not reach it.
  # In a non-interactive shell the background child is not a group leader, so
  # setsid execs in place and $! is the binary's own PID.
  setsid "$bin" --data-dir "$data_dir" ${extra[@]+"${extra[@]}"} >"$log_file" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$pid_file"
  wait_ready "$pid" || exit 1
  echo "arena-testenv ready (pid $pid)"
  readyz >/dev/null || { echo "warning: /readyz check failed right after start" >&2; }
  print_access
}

do_down() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "arena-testenv not running (data dir $data_dir)"
    rm -f "$pid_file"
    exit 0
  fi
  echo "stopping arena-testenv (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_exit "$pid" "$timeout"; then
    echo "arena-testenv (pid $pid) still running after ${timeout}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 10; then
      echo "arena-testenv (pid $pid) did not exit" >&2
      exit 1
    fi
  fi
  rm -f "$pid_file"
  echo "arena-testenv stopped"
}

do_status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "arena-testenv not running (data dir $data_dir)"
    exit 1
  fi
  echo "arena-testenv running (pid $pid, data dir $data_dir)"
  if [[ ! -f "$kubeconfig" ]]; then
    echo "not ready yet (no kubeconfig; log: $log_file)"
    exit 1
  fi
  print_access
  printf 'readyz: '
  if readyz; then echo; else echo "readyz check failed" >&2; exit 1; fi
}

case "$cmd" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
esac
