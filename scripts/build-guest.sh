#!/usr/bin/env bash
# Builds a tiny Linux guest for the real-libvirt end-to-end runs, from Debian packages only.
#
#   scripts/build-guest.sh OUTDIR
#
# Produces OUTDIR/vmlinuz (the current Debian cloud kernel) and OUTDIR/initrd.img (a ~1 MB
# gzip cpio initramfs: static busybox, the kernel's virtio modules, and an /init), and prints
# both paths. Idempotent: does nothing when both files exist and are newer than this script.
#
# How: `apt-get download` the versioned package behind linux-image-cloud-amd64 and
# busybox-static into OUTDIR/debs (kept as a cache), unpack them with `dpkg-deb -x` (nothing
# is installed), and pack the initramfs. Needs apt-get, apt-cache, dpkg-deb, cpio, gzip; run
# as root (the initramfs holds a /dev/console node).
#
# The guest's /init mounts proc, sys, devtmpfs and a tmpfs, loads the virtio modules (no
# modules.dep: insmod in order, retried for up to 5 passes), then every second:
#   - onlines any offline (hot-added) vCPU,
#   - with `ferry.dirty=M` on the kernel command line, rewrites M MiB of tmpfs-backed guest
#     RAM with non-zero (random) bytes, so a live migration has M MiB to resend per tick,
#   - prints `ferry-heartbeat N` (N = 1, 2, ... since boot) through the kernel log, on the serial console.
# Boot it with `console=ttyS0 quiet nolapic_timer printk.devkmsg=on printk.time=0
# [ferry.dirty=M]` (docs/real-hosts.md says why). M should stay below ~25 in a 128 MiB
# guest (the tmpfs holds two M MiB buffers).
set -euo pipefail

die() { echo "build-guest: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
outdir=$1
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
script=$(readlink -f "${BASH_SOURCE[0]}")

up_to_date() {
  [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initrd.img" ] &&
    [ "$outdir/vmlinuz" -nt "$script" ] && [ "$outdir/initrd.img" -nt "$script" ]
}

print_paths() {
  echo "$outdir/vmlinuz"
  echo "$outdir/initrd.img"
}

if up_to_date; then print_paths; exit 0; fi

# Two concurrent callers (e.g. two guests started at once) build once.
exec 9>"$outdir/.build.lock"
flock 9
if up_to_date; then print_paths; exit 0; fi

[ "$(id -u)" -eq 0 ] || die "run as root (the initramfs needs a /dev/console node)"
for tool in apt-get apt-cache dpkg-deb cpio gzip flock; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

# apt may be busy (another apt/dpkg holds a lock) on a fresh machine: retry.
apt_retry() {
  local n=0
  until "$@"; do
    n=$((n + 1))
    [ "$n" -lt 10 ] || die "'$*' failed $n times"
    echo "build-guest: apt busy or failed, retrying in 6 s ($n/10)" >&2
    sleep 6
  done
}

kernel_package() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}

debs="$outdir/debs"
mkdir -p "$debs"
have() { compgen -G "$debs/${1}_*.deb" >/dev/null; }
fetch() { (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$1") >&2; }

# First with the package lists as they are; if the kernel cannot be resolved or a download
# fails (stale lists name a version the archive no longer has), update them and try again.
kpkg=$(kernel_package || true)
fetched=false
if [ -n "$kpkg" ]; then
  fetched=true
  for pkg in "$kpkg" busybox-static; do
    have "$pkg" || fetch "$pkg" || { fetched=false; break; }
  done
fi
if ! $fetched; then
  apt_retry apt-get update -q >&2
  kpkg=$(kernel_package || true)
  [ -n "$kpkg" ] || die "cannot resolve the package behind linux-image-cloud-amd64"
  for pkg in "$kpkg" busybox-static; do
    have "$pkg" || apt_retry fetch "$pkg"
  done
fi

work=$(mktemp -d "$outdir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

kdeb=$(compgen -G "$debs/${kpkg}_*.deb" | sort -V | tail -n 1)
bdeb=$(compgen -G "$debs/busybox-static_*.deb" | sort -V | tail -n 1)
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"

kver=${kpkg#linux-image-}
vmlinuz="$work/kernel/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-$kver in $kdeb"
moddir="$work/kernel/lib/modules/$kver"
busybox="$work/busybox/bin/busybox"
[ -x "$busybox" ] || die "no /bin/busybox in $bdeb"

# --- the initramfs tree ---
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules}
cp "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
  [ -n "$applet" ] && [ "$applet" != busybox ] && ln -sf busybox "$root/bin/$applet"
done < <("$busybox" --list)
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

# Virtio modules, with the modules they depend on (read from each module's .modinfo) first.
# Built-in ones are skipped; the load order is written to /etc/ferry-modules.
wanted=(virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
        virtio_balloon virtio_blk virtio_net virtio_console)
declare -A seen=()
order=()
find_module() {  # name -> path of name.ko (dashes and underscores are equivalent)
  local pat=${1//_/[-_]}
  find "$moddir/kernel" \( -name "$pat.ko" -o -name "$pat.ko.xz" \) -print -quit
}
add_module() {
  local name=$1 path deps dep
  [ -z "${seen[$name]:-}" ] || return 0
  seen[$name]=1
  path=$(find_module "$name")
  if [ -z "$path" ]; then
    if grep -Eq "/${name//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null; then
      return 0  # built into the kernel
    fi
    die "module $name is neither a module nor built into $kver"
  fi
  if [[ $path == *.xz ]]; then
    xz -dc "$path" > "$root/lib/modules/$name.ko"
  else
    cp "$path" "$root/lib/modules/$name.ko"
  fi
  deps=$(tr '\0' '\n' < "$root/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)
  for dep in ${deps//,/ }; do add_module "${dep//-/_}"; done
  order+=("$name")
}
for m in "${wanted[@]}"; do add_module "$m"; done
printf '%s\n' "${order[@]}" > "$root/etc/ferry-modules"

cat > "$root/init" <<'EOF'
#!/bin/sh
# Ferry test guest: load virtio, then every second online hot-added vCPUs, optionally dirty
# ferry.dirty=M MiB of RAM, and print "ferry-heartbeat N" on the serial console.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1

pending=$(cat /etc/ferry-modules)
pass=0
while [ -n "$pending" ] && [ "$pass" -lt 5 ]; do
  pass=$((pass + 1))
  left=
  for m in $pending; do
    insmod "/lib/modules/$m.ko" 2>/dev/null || left="$left $m"
  done
  pending=$left
done
[ -z "$pending" ] || echo "ferry-init: modules not loaded:$pending"

dirty=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in ferry.dirty=*) dirty=${arg#ferry.dirty=} ;; esac
done
case "$dirty" in ''|*[!0-9]*) dirty=0 ;; esac
if [ "$dirty" -gt 0 ]; then
  # Random, so neither zero-page detection nor compression makes the pages free to send.
  dd if=/dev/urandom of=/tmp/dirty.src bs=1M count="$dirty" 2>/dev/null
  cp /tmp/dirty.src /tmp/dirty.buf
fi

# Heartbeats go out through the kernel's log (/dev/kmsg, at level 2 so `quiet` lets them
# through) to its serial console, which writes by polling the UART: a tty write would wait
# for the UART's transmit interrupt, which QEMU 7.2 under TCG sometimes loses across a live
# migration, leaving the guest running but silent. Boot with printk.devkmsg=on (no rate
# limit) and printk.time=0 (no timestamp): each line is "ferry-heartbeat N\r\n".
n=0
while :; do
  for f in /sys/devices/system/cpu/cpu[0-9]*/online; do
    [ -e "$f" ] && [ "$(cat "$f")" = 0 ] && echo 1 > "$f" 2>/dev/null
  done
  n=$((n + 1))
  if [ "$dirty" -gt 0 ]; then
    # Rewrites every page of the buffer in place (M MiB of guest RAM dirtied per tick) with
    # the random data rotated by another MiB each tick, so the pages' contents change too.
    k=$((n % dirty))
    dd if=/tmp/dirty.src of=/tmp/dirty.buf bs=1M skip="$k" count=$((dirty - k)) conv=notrunc 2>/dev/null
    [ "$k" -eq 0 ] ||
      dd if=/tmp/dirty.src of=/tmp/dirty.buf bs=1M seek=$((dirty - k)) count="$k" conv=notrunc 2>/dev/null
  fi
  echo "<2>ferry-heartbeat $n" > /dev/kmsg
  sleep 1
done
EOF
chmod 755 "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) |
  gzip -9 > "$work/initrd.img"
cp "$vmlinuz" "$work/vmlinuz"
# initrd last, so both files are newer than the script only once both are complete.
mv -f "$work/vmlinuz" "$outdir/vmlinuz"
mv -f "$work/initrd.img" "$outdir/initrd.img"
echo "build-guest: kernel $kver, modules: ${order[*]}, initrd $(du -k "$outdir/initrd.img" | cut -f1) KiB" >&2
print_paths
