#!/usr/bin/env bash
# Install Debian's libfaketime (package faketime) for `make test-at` / `make test-windows`, when missing.
set -euo pipefail
if compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "libfaketime missing; run as root: apt-get install -y faketime" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq faketime >/dev/null
