#!/usr/bin/env bash
# The whole test suite, as README says: install what the lab needs, build, start the lab, run
# every test (unit, contract, local, and the lab tests with real sshd, nginx, Prometheus,
# PostgreSQL), and stop the lab again — also when tests fail.
#
#   sudo scripts/test.sh            # everything
#   sudo scripts/test.sh -- NAME    # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: needs root (network namespaces, sshd); run with sudo" >&2; exit 1; }
[ "${1:-}" = "--" ] && shift

t0=$(date +%s)
lab/lab.sh install
cargo build --bins --features lab
export RUNBOOK_DEMO_BIN="$PWD/target/debug/cctelegram-demo"
lab_config="${RUNBOOK_LAB_DIR:-/tmp/runbook-lab}/runbook-mcp.toml"
trap 'lab/lab.sh stop' EXIT
lab/lab.sh start
status=0
cargo test --no-fail-fast --features lab -- "$@" || status=$?

# An independent client: the official Python MCP SDK (pinned) against the same lab.
venv=target/pyclient
if ! cmp -s tests/clients/requirements.txt "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
    cp tests/clients/requirements.txt "$venv/requirements.txt"
fi
"$venv/bin/python" tests/clients/python_check.py target/debug/runbook-mcp "$lab_config" || status=$?
"$venv/bin/python" tests/clients/python_gate.py target/debug/runbook-mcp "$lab_config" || status=$?

[ "$status" = 0 ] || { echo "scripts/test.sh: FAILED" >&2; exit "$status"; }
echo "scripts/test.sh: all tests passed in $(( $(date +%s) - t0 )) s"
