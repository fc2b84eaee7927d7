# Source this file: MPI launcher settings for this machine.
# Open MPI refuses to run as root unless told it is intended (containers, CI, Slurm test nodes).
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Open MPI's single-copy shared-memory transport stays at its default (on): disabling it makes
# allreduce several times slower.
