#!/usr/bin/env bash
# Installs the Python reference peers (tibet-ping 0.3.5, tibet-core 0.5.0,
# msgpack, and cryptography for scripts/signing.py) from PyPI into target/pyref, once. Prints the interpreter path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyref
want="tibet-ping==0.3.5 tibet-core==0.5.0 msgpack==1.1.0 cryptography==44.0.2"
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p target
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
  echo "$want" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
