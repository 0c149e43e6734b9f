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

# One run at a time owns the lab: lab.sh start/stop refuse while this lock is held. Children
# get the descriptor closed (9>&-) so no lab daemon keeps the lock after this run.
lab_dir="${RUNBOOK_LAB_DIR:-/tmp/runbook-lab}"
exec 9>"$lab_dir.lock"
flock -n 9 || { echo "scripts/test.sh: another run holds the lab ($lab_dir.lock)" >&2; exit 1; }
export RUNBOOK_LAB_LOCKED=1

t0=$(date +%s)
lab/lab.sh install 9>&-
cargo build --bins --features lab 9>&-
export RUNBOOK_DEMO_BIN="$PWD/target/debug/cctelegram-demo"
lab_config="${RUNBOOK_LAB_DIR:-/tmp/runbook-lab}/runbook-mcp.toml"
trap 'lab/lab.sh stop 9>&-' EXIT
lab/lab.sh start 9>&-
status=0
# Every line the suite prints, and every test's audit log and approval records, are kept for
# the secrets scan at the end.
out=target/test-output.log
export RUNBOOK_TEST_AUDIT_COPY="$PWD/target/test-audit"
rm -rf "$RUNBOOK_TEST_AUDIT_COPY"
cargo test --no-fail-fast --features lab -- "$@" 9>&- 2>&1 | tee "$out" || status=$?

# An independent client: the official Python MCP SDK (pinned) against the same lab.
venv=target/pyclient
if ! cmp -s tests/clients/requirements.txt "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
    cp tests/clients/requirements.txt "$venv/requirements.txt"
fi
"$venv/bin/python" tests/clients/python_check.py target/debug/runbook-mcp "$lab_config" 2>&1 | tee -a "$out" || status=$?
"$venv/bin/python" tests/clients/python_gate.py target/debug/runbook-mcp "$lab_config" 2>&1 | tee -a "$out" || status=$?

# No secret value of the lab in any output, log or audit line the suite produced.
scripts/secrets-scan.sh "$lab_dir/secrets" "$out" "$lab_dir"/state/audit.jsonl "$lab_dir"/state/approvals/*.json \
    "$RUNBOOK_TEST_AUDIT_COPY"/* || status=$?

[ "$status" = 0 ] || { echo "scripts/test.sh: FAILED" >&2; exit "$status"; }
echo "scripts/test.sh: all tests passed in $(( $(date +%s) - t0 )) s"
