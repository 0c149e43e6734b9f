#!/usr/bin/env bash
# secrets-scan.sh SECRETS_DIR FILE...
#
# Fails when any secret value of the lab (each file of SECRETS_DIR, and for a database URL its
# password) appears in any FILE: the whole test suite's output, the servers' logs, the audit
# logs. It proves first that it can fail: a canary file holding one of the values must be found.
set -euo pipefail
dir=$1
shift
values=$(mktemp)
trap 'rm -f "$values" "$values.canary"' EXIT
for f in "$dir"/*; do
    v=$(tr -d '\n' <"$f")
    [ "${#v}" -ge 6 ] && printf '%s\n' "$v" >>"$values"
    # postgres://user:PASSWORD@host:port/db: the password alone too
    if [[ $v == postgres://*:*@* ]]; then
        p=${v#postgres://*:}
        p=${p%%@*}
        [ "${#p}" -ge 6 ] && printf '%s\n' "$p" >>"$values"
    fi
done
[ -s "$values" ] || { echo "secrets-scan: no secret values in $dir" >&2; exit 1; }
# The canary: a line holding a secret must be caught, or the scan proves nothing.
printf 'log line with %s inside\n' "$(head -n1 "$values")" >"$values.canary"
grep -qFf "$values" "$values.canary" || { echo "secrets-scan: the canary was not found; the scan is broken" >&2; exit 1; }
hits=0
for f in "$@"; do
    [ -f "$f" ] || continue
    if grep -nFf "$values" "$f" >/dev/null; then
        echo "secrets-scan: a secret value appears in $f (line $(grep -nFf "$values" "$f" | head -n1 | cut -d: -f1))" >&2
        hits=$((hits + 1))
    fi
done
[ "$hits" = 0 ] || exit 1
echo "secrets-scan: $# file(s) scanned for $(wc -l <"$values") secret value(s): none found (canary caught)"
