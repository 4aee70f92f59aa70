#!/usr/bin/env bash
# Test guests for the real libvirt hosts of scripts/real-hosts.sh.
#
#   scripts/real-guest.sh xml DIR NAME [DIRTY_MIB]          print the domain XML of guest NAME
#   scripts/real-guest.sh start DIR NAME HOST [DIRTY_MIB]   build, define and start NAME on HOST
#   scripts/real-guest.sh disk DIR FILE SIZE_MIB            create a qcow2 disk, print its path
#
# The guest (scripts/build-guest.sh) is a Debian cloud kernel plus a busybox initramfs booted
# directly (no disk), 128 MiB, 1 of 4 vCPUs online (3 hot-pluggable), TCG (`type='qemu'`),
# a virtio balloon and one virtio NIC of type 'user'. Its /init prints `ferry-heartbeat N`
# every second on the serial console, which goes to DIR/guests/NAME.serial.log (append='on',
# so the counter carries on in the same file after a migration). DIRTY_MIB (default 0) is
# passed as `ferry.dirty=`: the guest then rewrites that many MiB of RAM every tick.
#
# All paths are absolute and outside the per-host bind-mounted directories, so every host
# sees the same kernel, initrd, serial log and disks (a migrated disk on such a shared file
# needs the migration's "unsafe" flag).
#
# `start` needs DIR/hosts.env (from `real-hosts.sh up DIR`), builds the guest into DIR/guest,
# writes DIR/guests/NAME.xml, defines and starts NAME on HOST (h1, h2, ...), waits up to
# 60 s for the first heartbeat, and prints the serial log path. A FILE given to `disk` that
# is not absolute is put under DIR/disks.
set -euo pipefail

prog=real-guest
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
  echo "usage: $0 xml DIR NAME [DIRTY_MIB] | start DIR NAME HOST [DIRTY_MIB] | disk DIR FILE SIZE_MIB" >&2
  exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

check_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "bad guest name: $1"; }
check_mib() { [[ $1 =~ ^[0-9]{1,5}$ ]] || die "not a number of MiB: $1"; }

# A stable locally administered MAC from the name: 52:54:00 plus 3 bytes of md5(NAME).
mac_of() {
  local h
  h=$(printf '%s' "$1" | md5sum | cut -c1-6)
  echo "52:54:00:${h:0:2}:${h:2:2}:${h:4:2}"
}

cmd_xml() {
  local dir=$1 name=$2 dirty=${3:-0} log emulator
  check_name "$name"; check_mib "$dirty"
  log="$dir/guests/$name.serial.log"
  emulator=$(command -v qemu-system-x86_64 || echo /usr/bin/qemu-system-x86_64)
  cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <currentMemory unit='MiB'>128</currentMemory>
  <vcpu placement='static' current='1'>4</vcpu>
  <vcpus>
    <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>
    <vcpu id='1' enabled='no' hotpluggable='yes'/>
    <vcpu id='2' enabled='no' hotpluggable='yes'/>
    <vcpu id='3' enabled='no' hotpluggable='yes'/>
  </vcpus>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$dir/guest/vmlinuz</kernel>
    <initrd>$dir/guest/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet nolapic_timer printk.devkmsg=on printk.time=0 ferry.dirty=$dirty</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$emulator</emulator>
    <serial type='file'>
      <source path='$log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='$log' append='on'/>
      <target type='serial' port='0'/>
    </console>
    <interface type='user'>
      <mac address='$(mac_of "$name")'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
EOF
}

host_uri() {  # DIR HOST -> FERRY_REAL_<HOST>_URI from DIR/hosts.env
  local env="$1/hosts.env" uri
  [ -f "$env" ] || die "$env is missing: run scripts/real-hosts.sh up $1"
  uri=$(sed -n "s/^FERRY_REAL_${2}_URI=//p" "$env" | tail -n 1)
  [ -n "$uri" ] || die "no host $2 in $env"
  echo "$uri"
}

cmd_start() {
  local dir=$1 name=$2 host=$3 dirty=${4:-0} uri log xml state deadline
  check_name "$name"; check_mib "$dirty"
  [[ $host =~ ^h[0-9]+$ ]] || die "bad host: $host"
  uri=$(host_uri "$dir" "$host")
  "$here/build-guest.sh" "$dir/guest" >/dev/null
  mkdir -p "$dir/guests"
  log="$dir/guests/$name.serial.log"
  xml="$dir/guests/$name.xml"
  cmd_xml "$dir" "$name" "$dirty" > "$xml"

  state=$(virsh -q -c "$uri" domstate "$name" 2>/dev/null || true)
  case "$state" in
    '') ;;
    'shut off'*|crashed*) virsh -q -c "$uri" undefine "$name" >/dev/null ;;  # a stale definition
    *) die "$name is already $state on $host" ;;
  esac
  virsh -q -c "$uri" define "$xml" >/dev/null
  : > "$log"  # a fresh counter: the log only ever holds this boot's heartbeats
  virsh -q -c "$uri" start "$name" >/dev/null
  deadline=$(($(date +%s) + 60))
  until grep -q '^ferry-heartbeat ' "$log" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "no heartbeat from $name on $host within 60 s (see $log)"
    fi
    sleep 0.2
  done
  echo "$log"
}

cmd_disk() {
  local dir=$1 file=$2 size=$3
  check_mib "$size"
  [ "$size" -gt 0 ] || die "size must be > 0"
  case "$file" in /*) ;; *) file="$dir/disks/$file" ;; esac
  mkdir -p "$(dirname "$file")"
  qemu-img create -q -f qcow2 "$file" "${size}M"
  echo "$file"
}

[ $# -ge 3 ] || usage
cmd=$1
dir=$(realpath -m -- "$2")
shift 2
case "$cmd" in
  xml)   [ $# -le 2 ] || usage; cmd_xml "$dir" "$@" ;;
  start) if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi; cmd_start "$dir" "$@" ;;
  disk)  [ $# -eq 2 ] || usage; cmd_disk "$dir" "$@" ;;
  *)     usage ;;
esac
