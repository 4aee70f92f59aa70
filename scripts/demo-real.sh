#!/usr/bin/env bash
# `make demo-real`: two real libvirt hosts on this machine (scripts/real-hosts.sh, in
# /run/ferry-real), a real QEMU guest booted on h1, and Ferry moving it live to h2 and back
# with the copy's progress; then the guest's heartbeat shows it counted on through both moves.
# Everything is torn down at the end, also on failure. Needs root.
#   scripts/demo-real.sh [FERRY_BINARY]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ferry="${1:-$here/build/apps/ferry/ferry}"
dir=/run/ferry-real
fleet="$here/examples/real-fleet.textproto"

trap 'bash "$here/scripts/real-hosts.sh" down "$dir" >/dev/null 2>&1 || true' EXIT
echo "== starting two libvirt hosts in $dir"
bash "$here/scripts/real-hosts.sh" up "$dir" 2
echo "== booting guest-1 on h1"
bash "$here/scripts/real-guest.sh" start "$dir" guest-1 h1
rm -rf "$dir/journal"
for target in h2 h1; do
  echo
  echo "== live migration of guest-1 to $target"
  "$ferry" run --fleet "$fleet" --db "$dir/journal" --template live-precopy \
    -p vm=guest-1 -p "target=$target" --timeout 300
done
echo
log="$dir/guests/guest-1.serial.log"
# The guest must go on counting on h1: wait (30 s at most) for two more heartbeats.
last_beat() { grep -a 'ferry-heartbeat' "$log" | tail -n 1 | tr -d '\r' | awk '{print $2}'; }
want=$(( $(last_beat) + 2 ))
for _ in $(seq 1 60); do
  [ "$(last_beat)" -ge "$want" ] && break
  sleep 0.5
done
echo "== guest-1's heartbeat (one line a second on its serial console, through both moves):"
grep -a 'ferry-heartbeat' "$log" | tail -n 3 | tr -d '\r'
beats="$(grep -ac 'ferry-heartbeat' "$log")"
last="$(last_beat)"
if [ "$last" -lt "$want" ]; then
  echo "guest-1 stopped counting at $last" >&2
  exit 1
elif [ "$beats" = "$last" ]; then
  echo "$beats heartbeats, no gap and no restart: the guest ran exactly once"
else
  echo "heartbeat gap: $beats lines, last counter $last" >&2
  exit 1
fi
