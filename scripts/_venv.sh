# Sourced by the other scripts: create .venv with Python >= 3.11 and install the project with its dev
# extras, re-installing only when pyproject.toml changed since the last install; then build the
# compiled kernels if this checkout's are not built yet (once, with a notice: adr/0012).
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
"$VENV/bin/python" -m backtester.compiled.aot --quiet || true
