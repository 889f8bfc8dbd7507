#!/usr/bin/env bash
# Install Debian's Chromium and Japanese fonts for the browser tests, when missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "Chromium or fonts-noto-cjk missing; run as root: apt-get install -y chromium fonts-noto-cjk" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
