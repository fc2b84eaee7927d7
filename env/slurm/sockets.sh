# Sourced by start.sh and stop.sh. The folder that holds the sockets of the cluster started from
# folder $1 (an absolute path): short, under /tmp, named after $1, because a socket path may not
# exceed 107 bytes and a cluster folder deep in a build tree easily does.
slurm_sockets_dir() {
  echo "/tmp/metasemi-slurm-sockets.$(printf '%s' "$1" | cksum | cut -d' ' -f1)"
}
