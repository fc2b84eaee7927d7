#!/usr/bin/env bash
# The Python readers the tests check the project's files with: TensorBoard's event reader and the
# safetensors package from PyPI, in a virtual environment outside the clone (kept, so a second
# run downloads nothing) on Debian's python, whose torch, numpy and h5py it sees. Prints the
# environment's python on stdout.
#   METASEMI_TEST_VENV  the virtual environment (default ~/.cache/metasemi-test-venv)
set -euo pipefail
venv="${METASEMI_TEST_VENV:-$HOME/.cache/metasemi-test-venv}"
want="tensorboard==2.21.0 safetensors==0.8.0"
stamp="$venv/.metasemi-packages"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2> /dev/null)" != "$want" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
