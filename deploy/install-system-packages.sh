#!/bin/sh
# Installs the Debian packages whose programs the service runs (no wheel provides
# them). Idempotent: it asks apt only for what is missing, and needs root only then.
set -eu

PACKAGES="gifsicle libjpeg-turbo-progs"

missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $package"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-packages: run as root, or install:$missing" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
