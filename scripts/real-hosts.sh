#!/usr/bin/env bash
# Runs N real libvirt "hosts" (h1..hN) on this one machine, for end-to-end runs against real
# QEMU guests (TCG) and real live migration. Needs root, libvirtd (Debian's monolithic
# daemon), qemu-system-x86_64, virsh, iproute2 and util-linux.
#
#   scripts/real-hosts.sh up DIR [N]           start h1..hN (N defaults to 2), write DIR/hosts.env
#   scripts/real-hosts.sh down DIR             destroy their guests, stop them, remove namespaces
#   scripts/real-hosts.sh status DIR           say whether each daemon answers, list its domains
#   scripts/real-hosts.sh link DIR HOST up|down   bring HOST's link (bridge side) up or down
#
# Each host hI is a libvirtd running as root in its own network namespace and its own mount
# namespace, where DIR/hI/{etc,run,lib,cache,log} are bind-mounted over /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt. Its UNIX socket is
# DIR/hI/sock/libvirt-sock (outside the bind mounts, so reachable from the root namespace);
# it listens on TCP (no auth) at 10.77.0.(10+I), an address that exists only inside the
# namespaces made here: each host's veth is plugged into a bridge in a third namespace.
# Nothing is added to the root namespace's interfaces, addresses or routes.
#
# DIR/hosts.env (sourceable; one KEY=VALUE a line, values unquoted except the host list):
#   FERRY_REAL_DIR=DIR
#   FERRY_REAL_HOSTS="h1 h2"
#   FERRY_REAL_h1_URI=qemu+unix:///system?socket=DIR/h1/sock/libvirt-sock
#   FERRY_REAL_h1_PEER_URI=qemu+tcp://10.77.0.11/system
#   FERRY_REAL_h1_ADDR=10.77.0.11
#   FERRY_REAL_h1_PID=<libvirtd pid>
#   ... and the same for h2..hN.
# DIR/state records every namespace, interface and daemon PID made, so `down` removes exactly
# those (and works after an `up` that failed midway). Names carry a prefix derived from DIR
# (f + 6 hex digits of md5(DIR)), so two DIRs can be up at once.
#
# Exit codes of `up`: 0 ready; 3 cannot work on this machine (not root, libvirtd or
# qemu-system-x86_64 missing, no namespaces), with a one-line reason on stderr; 1 any other
# failure, after tearing down what it had made. `up` on a DIR that is up tears it down first.
set -euo pipefail

prog=real-hosts
usage() {
  echo "usage: $0 up DIR [N] | down DIR | status DIR | link DIR HOST up|down" >&2
  exit 2
}
die() { echo "$prog: $*" >&2; exit 1; }
unusable() { echo "$prog: cannot run real hosts here: $*" >&2; exit 3; }
log() { echo "$prog: $*" >&2; }

subnet=10.77.0
deadline_s=30

host_addr() { echo "$subnet.$((10 + ${1#h}))"; }
sock_of() { echo "$dir/$1/sock/libvirt-sock"; }
uri_of() { echo "qemu+unix:///system?socket=$(sock_of "$1")"; }
peer_uri_of() { echo "qemu+tcp://$(host_addr "$1")/system"; }
vsh() { local h=$1; shift; timeout 20 virsh -q -c "$(uri_of "$h")" "$@"; }

set_dir() {
  # Absolute, symlinks resolved; DIR need not exist (down on a missing DIR is fine).
  dir=$(realpath -m -- "$1")
  prefix="f$(printf '%s' "$dir" | md5sum | cut -c1-6)"
  state="$dir/state"
  bridge_ns="$prefix-net"
  bridge="$prefix-br"
}
host_ns() { echo "$prefix-$1"; }        # netns of host hI
host_if() { echo "$prefix-$1"; }        # its veth end inside that netns
bridge_port() { echo "$prefix-${1}b"; } # the peer end, on the bridge

record() { echo "$*" >> "$state"; }
state_lines() { if [ -f "$state" ]; then grep -E "^$1 " "$state" || true; fi; }

netns_exists() { [ -e "/run/netns/$1" ]; }

# The hosts named in DIR/state (or in hosts.env when state is gone).
recorded_hosts() {
  {
    state_lines host | awk '{print $2}'
    if [ -f "$dir/hosts.env" ]; then
      sed -n 's/^FERRY_REAL_\(h[0-9]*\)_PID=.*/\1/p' "$dir/hosts.env"
    fi
  } | sort -u -V
}

# True when PID is a process we started for host H: a libvirtd using H's config, or a QEMU
# whose own view of /run/libvirt/qemu/NAME.pid is H's pidfile (same file: it runs in H's
# mount namespace), or that runs in H's network namespace.
is_our_libvirtd() {
  local pid=$1 h=$2 exe
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == */libvirtd* ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/$h/etc/libvirtd.conf"
}
is_our_qemu() {
  local pid=$1 h=$2 name=$3 exe ns mine
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == */qemu-system* ]] || return 1
  mine=$(stat -c %d:%i "$dir/$h/run/qemu/$name.pid" 2>/dev/null) || mine=none
  [ "$(stat -L -c %d:%i "/proc/$pid/root/run/libvirt/qemu/$name.pid" 2>/dev/null)" = "$mine" ] &&
    return 0
  ns=$(host_ns "$h")
  netns_exists "$ns" &&
    [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$ns")" ]
}

# Running (an exited daemon may stay a zombie until its reaper gets to it).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# SIGTERM, wait up to $2 seconds, then SIGKILL.
stop_pid() {
  local pid=$1 wait_s=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait_s * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "pid $pid did not stop on SIGTERM, killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
}

libvirtd_pids_of() {  # pids recorded for host H (state and its pidfile), verified ours
  local h=$1 pid
  {
    state_lines pid | awk -v h="$h" '$2 == h {print $3}'
    [ -f "$dir/$h/libvirtd.pid" ] && tr -dc '0-9\n' < "$dir/$h/libvirtd.pid"
    echo
  } | sort -u | while read -r pid; do
    [ -n "$pid" ] && is_our_libvirtd "$pid" "$h" && echo "$pid"
  done
  return 0
}

cmd_down() {
  [ -d "$dir" ] || return 0
  local h pid dom pidfile name ns line
  for h in $(recorded_hosts); do
    # 1. Destroy and undefine the host's domains while its daemon still answers.
    if [ -S "$(sock_of "$h")" ] && vsh "$h" version >/dev/null 2>&1; then
      for dom in $(vsh "$h" list --all --name 2>/dev/null || true); do
        vsh "$h" destroy "$dom" >/dev/null 2>&1 || true
        vsh "$h" undefine "$dom" >/dev/null 2>&1 ||
          vsh "$h" undefine --managed-save --snapshots-metadata "$dom" >/dev/null 2>&1 || true
      done
    fi
  done
  # 2. Stop the daemons by the PIDs we recorded (all at once: each takes a second or two).
  local -a stoppers=()
  for h in $(recorded_hosts); do
    for pid in $(libvirtd_pids_of "$h"); do stop_pid "$pid" 10 & stoppers+=($!); done
  done
  for pid in "${stoppers[@]}"; do wait "$pid" || true; done
  # 3. QEMUs they left behind (only those whose PID their host recorded).
  for h in $(recorded_hosts); do
    for pidfile in "$dir/$h"/run/qemu/*.pid; do
      [ -f "$pidfile" ] || continue
      name=$(basename "$pidfile" .pid)
      pid=$(tr -dc '0-9' < "$pidfile")
      if [ -n "$pid" ] && is_our_qemu "$pid" "$h" "$name"; then stop_pid "$pid" 5; fi
    done
  done
  # 4. Interfaces, then namespaces (last recorded first).
  while read -r _ ns name; do
    if netns_exists "$ns" && ip -n "$ns" link show "$name" >/dev/null 2>&1; then
      ip -n "$ns" link del "$name" 2>/dev/null || true
    fi
  done < <(state_lines link | tac)
  while read -r _ ns; do
    if netns_exists "$ns"; then ip netns del "$ns" || log "cannot delete netns $ns"; fi
  done < <(state_lines netns | tac)
  # Anything still holding a recorded name is reported, not killed.
  while read -r line; do
    ns=${line#netns }
    if netns_exists "$ns"; then log "netns $ns is still there"; fi
  done < <(state_lines netns)
  rm -f "$state" "$dir/hosts.env"
}

wait_until() {  # wait_until DEADLINE_EPOCH CMD...: poll CMD every 0.2 s until it succeeds
  local until=$1; shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || return 1
    sleep 0.2
  done
}

write_configs() {
  local h=$1 i=${1#h} hd="$dir/$1" addr uuid port
  addr=$(host_addr "$h")
  uuid=$(printf '%s' "$dir/$h" | md5sum | cut -c1-32 |
    sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12})$/\1-\2-\3-\4-\5/')
  port=$((49152 + (i - 1) * 100))
  mkdir -p "$hd"/{etc,run,lib,cache,log,sock}
  cat > "$hd/etc/libvirtd.conf" <<EOF
# $h: generated by scripts/real-hosts.sh
unix_sock_dir = "$hd/sock"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
listen_addr = "$addr"
host_uuid = "$uuid"
log_outputs = "3:file:$hd/libvirtd.log"
keepalive_interval = 1
keepalive_count = 3
EOF
  cat > "$hd/etc/qemu.conf" <<EOF
# $h: generated by scripts/real-hosts.sh
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "$addr"
migration_host = "$addr"
migration_port_min = $port
migration_port_max = $((port + 63))
# The source daemon's connection to the destination in a peer-to-peer migration: a cut
# link is noticed after about interval * (count + 1) seconds.
keepalive_interval = 1
keepalive_count = 3
EOF
}

start_daemon() {
  local h=$1 hd="$dir/$1"
  # ip netns exec gives a private /sys; unshare -m a private mount namespace for the binds.
  # shellcheck disable=SC2016 # expanded by the inner sh
  ip netns exec "$(host_ns "$h")" unshare -m --propagation private \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
    sh -c '
      set -e
      hd=$1
      mount --bind "$hd/etc" /etc/libvirt
      mount --bind "$hd/run" /run/libvirt
      mount --bind "$hd/lib" /var/lib/libvirt
      mount --bind "$hd/cache" /var/cache/libvirt
      mount --bind "$hd/log" /var/log/libvirt
      exec libvirtd -d -l -f "$hd/etc/libvirtd.conf" -p "$hd/libvirtd.pid"
    ' sh "$hd"
}

on_up_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then log "up failed, tearing down"; cmd_down || true; fi
}

cmd_up() {
  local n=$1 i h ns addr pid until hosts=() ifname port
  [[ $n =~ ^[1-9][0-9]?$ ]] || die "N must be 1..99"
  [ "$(id -u)" -eq 0 ] || unusable "not root"
  for tool in libvirtd qemu-system-x86_64 virsh ip unshare mount; do
    command -v "$tool" >/dev/null || unusable "$tool is missing"
  done
  [[ $dir =~ ^[A-Za-z0-9/._-]+$ ]] || die "DIR may only hold letters, digits and / . _ -: $dir"
  # DIR/h99/sock/libvirt-admin-sock must fit in a UNIX socket address (107 bytes).
  [ ${#dir} -le 79 ] || die "DIR is too long for a UNIX socket path: $dir"
  unshare -m true 2>/dev/null || unusable "cannot create a mount namespace"

  mkdir -p "$dir"
  if [ -f "$state" ] || [ -f "$dir/hosts.env" ]; then
    log "$dir is up: tearing it down first"
    cmd_down
  fi
  # Fresh per-host state; the guest build (DIR/guest) and guest files (DIR/guests) stay.
  for h in "$dir"/h[0-9]*; do if [ -d "$h" ]; then rm -rf "$h"; fi; done

  if netns_exists "$bridge_ns"; then
    die "network namespace $bridge_ns exists but $dir/state does not record it (ip netns del it?)"
  fi
  ip netns add "$bridge_ns" 2>/dev/null || unusable "cannot create a network namespace"
  echo "prefix $prefix" > "$state"
  record "netns $bridge_ns"
  trap on_up_exit EXIT
  if ! getent group libvirt-qemu >/dev/null || ! getent passwd libvirt-qemu >/dev/null; then
    useradd -r -U -s /usr/sbin/nologin libvirt-qemu 2>/dev/null ||
      getent passwd libvirt-qemu >/dev/null || die "cannot create user libvirt-qemu"
  fi
  # Mount points for the per-host binds (libvirt hard-codes these paths as root).
  mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt

  ip -n "$bridge_ns" link set lo up
  ip -n "$bridge_ns" link add "$bridge" type bridge
  record "link $bridge_ns $bridge"
  ip -n "$bridge_ns" link set "$bridge" up

  for ((i = 1; i <= n; i++)); do
    h="h$i"; hosts+=("$h"); ns=$(host_ns "$h"); addr=$(host_addr "$h")
    record "host $h"
    ip netns add "$ns"
    record "netns $ns"
    ip -n "$ns" link set lo up
    port=$(bridge_port "$h"); ifname=$(host_if "$h")
    ip -n "$bridge_ns" link add "$port" type veth peer name "$ifname" netns "$ns"
    record "link $bridge_ns $port"
    ip -n "$bridge_ns" link set "$port" master "$bridge" up
    ip -n "$ns" addr add "$addr/24" dev "$ifname"
    ip -n "$ns" link set "$ifname" up
    write_configs "$h"
  done

  # QEMU's capabilities, probed by libvirt on first use (~4 s per host under TCG), are kept
  # in DIR/qemu-caps between runs; libvirt re-probes when they no longer match the binaries.
  if compgen -G "$dir/qemu-caps/*.xml" >/dev/null; then
    for h in "${hosts[@]}"; do
      mkdir -p "$dir/$h/cache/qemu/capabilities"
      cp "$dir"/qemu-caps/*.xml "$dir/$h/cache/qemu/capabilities/"
    done
  fi

  for h in "${hosts[@]}"; do
    start_daemon "$h" || die "libvirtd of $h did not start (see $dir/$h/libvirtd.log)"
    pid=$(tr -dc '0-9' < "$dir/$h/libvirtd.pid" 2>/dev/null || true)
    if [ -z "$pid" ] || ! is_our_libvirtd "$pid" "$h"; then die "no libvirtd PID for $h"; fi
    record "pid $h $pid"
  done

  until=$(($(date +%s) + deadline_s))
  local -A waiters=()
  for h in "${hosts[@]}"; do  # in parallel: each daemon's first answer may probe QEMU
    wait_until "$until" vsh "$h" version & waiters[$h]=$!
  done
  for h in "${hosts[@]}"; do
    wait "${waiters[$h]}" ||
      die "libvirtd of $h does not answer on $(sock_of "$h") (see $dir/$h/libvirtd.log)"
  done
  if compgen -G "$dir/h1/cache/qemu/capabilities/*.xml" >/dev/null; then
    mkdir -p "$dir/qemu-caps"
    cp "$dir"/h1/cache/qemu/capabilities/*.xml "$dir/qemu-caps/"
  fi
  # Every host reaches h1 over TCP, and h1 reaches every other host.
  for h in "${hosts[@]:1}"; do
    wait_until "$until" ip netns exec "$(host_ns h1)" timeout 10 virsh -q -c "$(peer_uri_of "$h")" version ||
      die "h1 cannot reach $h at $(peer_uri_of "$h")"
    wait_until "$until" ip netns exec "$(host_ns "$h")" timeout 10 virsh -q -c "$(peer_uri_of h1)" version ||
      die "$h cannot reach h1 at $(peer_uri_of h1)"
  done

  {
    echo "FERRY_REAL_DIR=$dir"
    echo "FERRY_REAL_HOSTS=\"${hosts[*]}\""
    for h in "${hosts[@]}"; do
      echo "FERRY_REAL_${h}_URI=$(uri_of "$h")"
      echo "FERRY_REAL_${h}_PEER_URI=$(peer_uri_of "$h")"
      echo "FERRY_REAL_${h}_ADDR=$(host_addr "$h")"
      echo "FERRY_REAL_${h}_PID=$(state_lines pid | awk -v h="$h" '$2 == h {print $3}' | tail -n 1)"
    done
  } > "$dir/hosts.env.tmp"
  mv -f "$dir/hosts.env.tmp" "$dir/hosts.env"
  trap - EXIT
  log "up: ${hosts[*]} in $dir (prefix $prefix)"
  echo "$dir/hosts.env"
}

cmd_status() {
  local h pid doms line
  [ -f "$state" ] || { echo "$dir: down"; return 0; }
  for h in $(recorded_hosts); do
    pid=$(state_lines pid | awk -v h="$h" '$2 == h {print $3}' | tail -n 1)
    if vsh "$h" version >/dev/null 2>&1; then
      echo "$h: up (libvirtd pid ${pid:-?}, $(host_addr "$h"), $(uri_of "$h"))"
      doms=$(vsh "$h" list --all || true)
      [ -n "$doms" ] || doms="(no domains)"
      while IFS= read -r line; do echo "    $line"; done <<< "$doms"
    else
      echo "$h: not answering (libvirtd pid ${pid:-?})"
    fi
  done
}

cmd_link() {
  local h=$1 updown=$2 port
  [[ $updown == up || $updown == down ]] || usage
  state_lines host | awk '{print $2}' | grep -qx "$h" || die "no host $h in $dir"
  port=$(bridge_port "$h")
  ip -n "$bridge_ns" link set "$port" "$updown"
  log "$h link $updown"
}

[ $# -ge 2 ] || usage
cmd=$1
set_dir "$2"
case "$cmd" in
  up)     [ $# -le 3 ] || usage; cmd_up "${3:-2}" ;;
  down)   [ $# -eq 2 ] || usage; cmd_down ;;
  status) [ $# -eq 2 ] || usage; cmd_status ;;
  link)   [ $# -eq 4 ] || usage; cmd_link "$3" "$4" ;;
  *)      usage ;;
esac
