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
trap 'lab/lab.sh stop' EXIT
lab/lab.sh start
cargo test --no-fail-fast --features lab -- "$@"
echo "scripts/test.sh: all tests passed in $(( $(date +%s) - t0 )) s"
