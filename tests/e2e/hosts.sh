#!/usr/bin/env bash
# The e2e fixture: `hosts.sh up DIR` starts two real libvirt hosts (scripts/real-hosts.sh) and
# builds the guest (scripts/build-guest.sh); `hosts.sh down DIR` tears them down. When the
# hosts cannot run here (real-hosts.sh exits 3: not root, no namespaces, no QEMU), `up` fails
# under CI=true and otherwise records the reason in DIR/skip-reason, which makes every e2e
# case skip with it.
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
cmd="${1:?usage: hosts.sh up|down DIR}"
dir="${2:?usage: hosts.sh up|down DIR}"

case "$cmd" in
  up)
    mkdir -p "$dir"
    rm -f "$dir/skip-reason"
    bash "$here/scripts/real-hosts.sh" up "$dir" 2 2>"$dir/up.err"
    rc=$?
    cat "$dir/up.err" >&2
    if [ $rc -eq 3 ]; then
      reason="$(tail -n 1 "$dir/up.err")"
      if [ "${CI:-}" = "true" ]; then
        echo "e2e: the real libvirt hosts cannot start here: $reason" >&2
        exit 1
      fi
      echo "$reason" > "$dir/skip-reason"
      echo "e2e skipped: $reason"
      exit 0
    fi
    [ $rc -eq 0 ] || exit $rc
    bash "$here/scripts/build-guest.sh" "$dir/guest"
    ;;
  down)
    bash "$here/scripts/real-hosts.sh" down "$dir"
    ;;
  *)
    echo "usage: hosts.sh up|down DIR" >&2
    exit 2
    ;;
esac
