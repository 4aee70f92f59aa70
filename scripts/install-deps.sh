#!/usr/bin/env bash
# Installs, with apt, the Debian 12 packages Ferry builds and tests with — only those missing.
# Idempotent: a second run installs nothing. Run as root (or through sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev            # C++ Actor Framework 0.17
  librocksdb-dev        # the journal
  libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev
  libjemalloc-dev       # the allocator the apps and benchmarks link
  catch2                # Catch2 v2
  libcli11-dev          # the CLI
  libgrpc++-dev protobuf-compiler-grpc  # ferryd's API
  openssl               # test certificates for the API's TLS tests
  libvirt-dev           # the libvirt driver (its test:/// driver serves the unit tests)
  # Real libvirt hosts and a real QEMU guest for the end-to-end tests (scripts/real-hosts.sh);
  # not libvirt-daemon-system, which brings init scripts, polkit and iptables.
  libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
  cpio iproute2 util-linux
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# Another apt/dpkg process may hold the lock for a while on a fresh machine: retry.
apt_retry() {
  local n=0
  until "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; do
    n=$((n + 1))
    if [ $n -ge 10 ]; then echo "install-deps: '$*' failed $n times" >&2; return 1; fi
    echo "install-deps: apt busy or failed, retrying in 6 s ($n/10)" >&2
    sleep 6
  done
}
apt_retry apt-get update -q
apt_retry apt-get install -y -q --no-install-recommends "${missing[@]}"
