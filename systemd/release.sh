#!/bin/sh
# Makes a release tarball: the built application with its production
# dependencies and the systemd files, so a NAS needs nothing but Node.js >= 20:
#
#   systemd/release.sh [--out DIR] [--no-build]
#   -> DIR/tapedeck-VERSION-linux-ARCH.tar.gz     (DIR defaults to the current folder)
#
# On the NAS:  tar xzf tapedeck-*.tar.gz && sudo tapedeck-*/systemd/install.sh
# The dependencies are the ones installed in this tree (native parts included),
# so build the tarball on the architecture it is meant for.
set -eu
umask 022

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd -P)
SRC=$(cd "$SCRIPT_DIR/.." && pwd -P)
OUT=$(pwd -P)
BUILD=

while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || { echo "release.sh: --out needs a folder" >&2; exit 1; }; OUT=$2; shift 2 ;;
    --no-build) BUILD=--no-build; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "release.sh: unknown option: $1" >&2; exit 1 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)

VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
ARCH=$(node -p 'process.arch')
NAME=tapedeck-$VERSION-linux-$ARCH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tapedeck-release.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The installer assembles exactly the application tree (dist/src, production
# node_modules, devices, bin); stage it under a throwaway prefix and add systemd/.
"$SCRIPT_DIR/install.sh" --destdir "$TMP/stage" --prefix /app --no-start $BUILD >"$TMP/install.log" 2>&1 || {
  cat "$TMP/install.log" >&2
  exit 1
}
mv "$TMP/stage/app" "$TMP/$NAME"
rm -rf "$TMP/$NAME/share"
mkdir "$TMP/$NAME/systemd"
for f in tapedeck.service tapedeck-stager.service tapedeck.sysusers tapedeck.tmpfiles tapedeck.modules-load \
  tapedeck.conf install.sh release.sh container.sh README.md; do
  [ -f "$SCRIPT_DIR/$f" ] && cp -p "$SCRIPT_DIR/$f" "$TMP/$NAME/systemd/$f"
done
tar --owner=0 --group=0 --numeric-owner -C "$TMP" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "$OUT/$NAME.tar.gz"
