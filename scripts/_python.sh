# Sourced by the guide's shell scripts: sets PYTHON to the repository's .venv Python (or python3)
# and puts the repository on PYTHONPATH, so `"$PYTHON" -m vlwm…` works from a checkout.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$REPO/.venv/bin/python" ]]; then
    PYTHON="$REPO/.venv/bin/python"
elif command -v python3 >/dev/null 2>&1; then
    PYTHON="$(command -v python3)"
else
    echo "$(basename "$0"): no Python found: create $REPO/.venv (make test) or install python3" >&2
    exit 1
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
