#!/usr/bin/env bash
# Stops the one-node test cluster that start.sh started from METASEMI_SLURM_DIR (default
# /tmp/metasemi-slurm-$USER): cancels its jobs, then ends slurmd, slurmctld and munged by the
# ids in their pid files, and removes the sockets folder start.sh made under /tmp. Safe to run
# after a failed start or twice. With --purge it also removes the folder.
set -uo pipefail

dir=${METASEMI_SLURM_DIR:-/tmp/metasemi-slurm-${USER:-$(id -un)}}
[ -d "$dir" ] || exit 0
export SLURM_CONF=$dir/etc/slurm.conf

if [ -f "$SLURM_CONF" ] && [ -f "$dir/run/slurmctld.pid" ]; then
  timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null || true
fi

stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

stop_pid "$dir/run/slurmd.pid"
stop_pid "$dir/run/slurmctld.pid"
stop_pid "$dir/run/munged.pid"
source "$(dirname "${BASH_SOURCE[0]}")/sockets.sh"
rm -rf "$(slurm_sockets_dir "$(cd "$dir" && pwd)")"

if [ "${1:-}" = "--purge" ]; then
  rm -rf "$dir"
fi
exit 0
