# Sourced (not run) by the batch scripts of jobs/: the environment of a job and the helpers every
# job kind shares. The script that sources it has set `root` (the repository) and `job` (its own
# name, for messages); with `ms_modules_optional=1` a machine without a module command (a login
# node, a dry run) skips METASEMI_MODULES instead of failing.
#
# Environment (every one optional):
#   METASEMI_BIN        folder of the programs (default: $root/build/bin, where env/build.sh puts
#                       them)
#   METASEMI_MODULES    environment modules to load, space-separated (e.g. "openmpi/4.1 hdf5")
#   METASEMI_ENV_FILE   a file to source first (e.g. a Spack environment's loads file)
#   METASEMI_EXEC       a command put before every program (e.g. "apptainer exec metasemi.sif")
#   METASEMI_SRUN_ARGS  extra srun arguments for the parallel steps (default: none; --mpi=pmix
#                       is always given)

ms_bin=${METASEMI_BIN:-$root/build/bin}
read -r -a ms_exec <<< "${METASEMI_EXEC:-}"
read -r -a ms_srun_extra <<< "${METASEMI_SRUN_ARGS:-}"

ms_say() { echo "[$job $(date '+%F %T')] $*"; }

# A bad setting: one line naming it, exit 2 (as the programs do for a bad flag).
ms_fail() {
  echo "$job: $*" >&2
  exit 2
}

if [ -n "${METASEMI_ENV_FILE:-}" ]; then
  [ -f "$METASEMI_ENV_FILE" ] || ms_fail "METASEMI_ENV_FILE: no such file '$METASEMI_ENV_FILE'"
  # shellcheck disable=SC1090
  source "$METASEMI_ENV_FILE"
fi
if [ -n "${METASEMI_MODULES:-}" ]; then
  # Batch shells are not login shells: the module command may still need its init script.
  if ! command -v module > /dev/null 2>&1; then
    for init in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh /usr/share/lmod/lmod/init/bash \
      /usr/share/modules/init/bash; do
      # shellcheck disable=SC1090
      [ -f "$init" ] && { source "$init"; break; }
    done
  fi
  if command -v module > /dev/null 2>&1; then
    # shellcheck disable=SC2086
    module load $METASEMI_MODULES ||
      ms_fail "METASEMI_MODULES: 'module load $METASEMI_MODULES' failed"
  elif [ "${ms_modules_optional:-0}" != 1 ]; then
    ms_fail "METASEMI_MODULES is set but this node has no 'module' command"
  fi
fi
# Open MPI refuses root unless told; as another user this changes nothing.
if [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC1091
  source "$root/env/mpi-env.sh"
fi

# Fails unless every named program is in METASEMI_BIN.
ms_need() {
  local p
  for p in "$@"; do
    [ -x "$ms_bin/$p" ] || ms_fail "METASEMI_BIN: no program '$ms_bin/$p' (build with env/build.sh or set METASEMI_BIN)"
  done
}

# Runs a program of METASEMI_BIN directly (serial steps in the batch shell).
ms_prog() {
  local p=$1
  shift
  "${ms_exec[@]}" "$ms_bin/$p" "$@"
}

# Runs a program of METASEMI_BIN on every task of the allocation. srun does not inherit
# --cpus-per-task from sbatch since Slurm 22.05, so it is passed on.
ms_srun() {
  local p=$1 cpus=()
  shift
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && cpus=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  ms_step srun --mpi=pmix "${cpus[@]}" "${ms_srun_extra[@]}" "${ms_exec[@]}" "$ms_bin/$p" "$@"
}

# Settings of a config file as metasemi-train resolves them ("key = value" lines).
ms_resolve() { ms_prog metasemi-train --config "$1" --dry-run "${@:2}"; }
ms_setting() { awk -F' = ' -v k="$1" '$1 == k {print $2}' <<< "$2"; }

# Signals. Slurm's `--signal=B:USR1@T` (and `scancel --signal=USR1 --batch`) reach this batch
# shell only: the trap hands them to the running step, whose programs then checkpoint and exit
# with 75. SIGTERM is handed on as SIGUSR1 because srun answers a SIGTERM by killing its tasks.
ms_step_pid=
ms_signalled=
ms_forward() {
  ms_signalled=$1
  ms_say "received SIG$1; asking the running step to checkpoint and stop (SIGUSR1)"
  [ -n "$ms_step_pid" ] && kill -USR1 "$ms_step_pid" 2> /dev/null
  return 0
}
trap 'ms_forward USR1' USR1
trap 'ms_forward TERM' TERM

# Runs a command in the background and waits for it, so that the traps above run while it
# does; returns its exit status.
ms_step() {
  "$@" &
  ms_step_pid=$!
  while :; do
    wait "$ms_step_pid" || true
    kill -0 "$ms_step_pid" 2> /dev/null || break
  done
  local rc=0
  # Asked again: a wait cut short by a trapped signal returns 128+n, not the step's status.
  wait "$ms_step_pid" || rc=$?
  ms_step_pid=
  return "$rc"
}
