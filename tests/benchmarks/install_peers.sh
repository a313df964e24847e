#!/usr/bin/env bash
# Install the programs the optimizer benchmark compares Squeezer against.
# Idempotent: apt-get runs only when a program is missing. Debian 12 has no oxipng
# package; the benchmark runs oxipng through pyoxipng, which the venv already has.
set -euo pipefail

PY="${PY:-.venv/bin/python}"

# program  debian-package
PEERS="
jpegoptim jpegoptim
optipng optipng
pngquant pngquant
gifsicle gifsicle
cwebp webp
qpdf qpdf
gs ghostscript
/usr/bin/time time
"

missing=""
while read -r program package; do
    [ -n "$program" ] || continue
    command -v "$program" >/dev/null 2>&1 || missing="$missing $package"
done <<< "$PEERS"

if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# The in-process peers and the chart.
if ! "$PY" -c "import mozjpeg_lossless_optimization, oxipng, matplotlib, ssimulacra2" \
        2>/dev/null; then
    "$PY" -m pip install -q "mozjpeg-lossless-optimization>=1.2" "pyoxipng>=9.0" \
        "matplotlib>=3.8" "ssimulacra2>=0.3"
fi
