#!/usr/bin/env bash
# Builds the Python package (crates/tibet-iot-py) into the venv target/pyvenv,
# beside its test tools and the Python reference peers (tibet-ping 0.3.5,
# tibet-core 0.5.0) it is tested against. Prints the interpreter path.
#   bash scripts/pypackage.sh          # debug build (fast; what the tests need)
#   bash scripts/pypackage.sh release  # optimised build (benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyvenv
want="pytest==9.2.0 pytest-asyncio==1.5.0 pytest-timeout==2.4.0 tibet-ping==0.3.5 tibet-core==0.5.0 msgpack==1.1.0 maturin==1.16.0"
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p target
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
  echo "$want" > "$stamp"
fi
profile=dev
[ "${1:-}" = release ] && profile=release
# The same command as the README's `pip install ./crates/tibet-iot-py`,
# with the venv's maturin and the chosen cargo profile.
PATH="$PWD/$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile $profile --locked" "$venv/bin/pip" install --quiet --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps ./crates/tibet-iot-py >&2
echo "$PWD/$venv/bin/python"
