#!/bin/sh
# Tapedeck installer: installs a checkout or release tarball as a system
# service. Run from anywhere: it finds the tree it belongs to.
#
#   sudo systemd/install.sh                      install (or upgrade) and start
#   systemd/install.sh --destdir /tmp/pkg        stage the files for a package
#   sudo systemd/install.sh --uninstall [--purge]
#
# See systemd/install.sh --help and systemd/README.md.
set -eu
umask 022

PROG=$(basename "$0")
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd -P)
SRC=$(cd "$SCRIPT_DIR/.." && pwd -P)

PREFIX=/opt/tapedeck
DESTDIR=
BINDIR=/usr/local/bin
SYSTEMD_LIBDIR=/usr/local/lib
NODE_MODULES_FROM=
USE_NPM=no
BUILD=auto
START=yes
ACTION=install
PURGE=no

# The configuration path is fixed: the units and the CLI both use it.
CONF_DIR=/etc/tapedeck
CONF_FILE=$CONF_DIR/tapedeck.conf
STATE_DIR=/var/lib/tapedeck
CACHE_DIR=/var/cache/tapedeck
RUN_DIR=/run/tapedeck
UNITS="tapedeck.service tapedeck-stager.service"

usage() {
  cat <<EOF
Usage: $PROG [OPTION]...
Install Tapedeck from this tree ($SRC) as a systemd service.

  --prefix DIR             application directory (default $PREFIX)
  --destdir DIR            stage every file under DIR instead of /, for packaging:
                           no users, no directories under /var, no systemctl
  --bindir DIR             where the 'tapedeck' command is linked (default $BINDIR)
  --systemd-libdir DIR     parent of systemd/system, sysusers.d, tmpfiles.d and
                           modules-load.d (default $SYSTEMD_LIBDIR; packages: /usr/lib)
  --node-modules-from DIR  copy the production dependencies from this node_modules
                           folder (default: the tree's own node_modules when it is
                           complete, else 'npm ci --omit=dev')
  --npm                    always run 'npm ci --omit=dev' in the prefix (needs the
                           npm registry or its cache)
  --no-build               never build: use dist/ as it is
  --no-start               do not enable or start the service
  --uninstall              remove what was installed; keeps the configuration,
                           the catalog and the cache
  --purge                  with --uninstall: also remove $CONF_DIR, $STATE_DIR,
                           $CACHE_DIR and the tapedeck user
  -h, --help               show this help

Installs: PREFIX (dist/, node_modules/, devices/, bin/tapedeck), BINDIR/tapedeck,
the units $UNITS, sysusers.d, tmpfiles.d and modules-load.d
entries, and a commented default configuration at $CONF_FILE (an edited one is
never overwritten). Then, as root with systemd running: creates the user and
the directories and enables and starts tapedeck.service.
EOF
}

say() { printf '%s\n' "$*"; }
note() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) need_arg "$@"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --destdir) need_arg "$@"; DESTDIR=$2; shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --bindir) need_arg "$@"; BINDIR=$2; shift 2 ;;
    --bindir=*) BINDIR=${1#*=}; shift ;;
    --systemd-libdir) need_arg "$@"; SYSTEMD_LIBDIR=$2; shift 2 ;;
    --systemd-libdir=*) SYSTEMD_LIBDIR=${1#*=}; shift ;;
    --node-modules-from) need_arg "$@"; NODE_MODULES_FROM=$2; shift 2 ;;
    --node-modules-from=*) NODE_MODULES_FROM=${1#*=}; shift ;;
    --npm) USE_NPM=yes; shift ;;
    --no-build) BUILD=no; shift ;;
    --no-start) START=no; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

[ "$PURGE" = no ] || [ "$ACTION" = uninstall ] || die "--purge only goes with --uninstall"

# Paths end up in unit files and sed expressions: keep them plain.
check_path() {
  case $2 in
    /*) ;;
    *) die "$1 must be an absolute path: $2" ;;
  esac
  case $2 in
    *[!A-Za-z0-9._/+@-]*) die "$1 may only contain letters, digits and . _ / + @ -: $2" ;;
  esac
}
check_path --prefix "$PREFIX"
check_path --bindir "$BINDIR"
check_path --systemd-libdir "$SYSTEMD_LIBDIR"
PREFIX=$(printf '%s' "$PREFIX" | sed 's|/*$||')
[ -n "$PREFIX" ] || die "--prefix cannot be /"
case $PREFIX in
  /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /media | /mnt | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/* | /var | /var/lib | /var/cache)
    case $PREFIX in
      /usr/local/* | /usr/lib/* | /usr/share/*) ;;
      *) die "--prefix must be a directory of its own (like /opt/tapedeck), not $PREFIX" ;;
    esac ;;
esac
if [ -n "$DESTDIR" ]; then
  mkdir -p "$DESTDIR"
  DESTDIR=$(cd "$DESTDIR" && pwd -P)
  [ "$DESTDIR" != / ] || DESTDIR=
fi

D=$DESTDIR
UNIT_DIR=$SYSTEMD_LIBDIR/systemd/system
SYSUSERS_FILE=$SYSTEMD_LIBDIR/sysusers.d/tapedeck.conf
TMPFILES_FILE=$SYSTEMD_LIBDIR/tmpfiles.d/tapedeck.conf
MODULES_FILE=$SYSTEMD_LIBDIR/modules-load.d/tapedeck.conf
DOC_FILE=$PREFIX/share/doc/tapedeck/systemd.md
MANIFEST=$PREFIX/share/tapedeck/install-manifest
SHIPPED_CONF=$PREFIX/share/tapedeck/tapedeck.conf.default

IS_ROOT=no
[ "$(id -u)" -eq 0 ] && IS_ROOT=yes
SYSTEMD_RUNNING=no
[ -d /run/systemd/system ] && SYSTEMD_RUNNING=yes
# Live steps (users, directories, systemctl) only when installing into /.
LIVE=no
if [ -z "$D" ]; then
  [ "$IS_ROOT" = yes ] || die "changing the system needs root (or use --destdir DIR to work in a staging folder)"
  LIVE=yes
fi

have() { command -v "$1" >/dev/null 2>&1; }

# A directory we may replace or delete: empty, or carrying our manifest.
ours() {
  [ -f "$1/share/tapedeck/install-manifest" ] && return 0
  [ -d "$1" ] || return 0
  [ -z "$(ls -A "$1")" ]
}

systemctl_quiet() { systemctl "$@" >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------- uninstall

uninstall() {
  P=$D$PREFIX
  if [ -e "$P" ] && ! ours "$P"; then
    die "$P was not installed by this script (no share/tapedeck/install-manifest): not touching it"
  fi
  if [ "$LIVE" = yes ] && [ "$SYSTEMD_RUNNING" = yes ]; then
    # shellcheck disable=SC2086
    systemctl_quiet disable --now $UNITS
  fi
  removed=0
  if [ -f "$D$MANIFEST" ]; then
    while IFS= read -r f; do
      case $f in /*) ;; *) continue ;; esac
      case $f in "$PREFIX"/*) continue ;; esac
      # The command link: only when it is still ours.
      if [ "$f" = "$BINDIR/tapedeck" ] && [ "$(readlink "$D$f" 2>/dev/null || true)" != "$PREFIX/bin/tapedeck" ]; then continue; fi
      if [ -L "$D$f" ] || [ -f "$D$f" ]; then
        rm -f "$D$f"
        removed=$((removed + 1))
        say "removed $D$f"
      fi
    done <"$D$MANIFEST"
  else
    for f in "$BINDIR/tapedeck" "$UNIT_DIR/tapedeck.service" "$UNIT_DIR/tapedeck-stager.service" \
      "$SYSUSERS_FILE" "$TMPFILES_FILE" "$MODULES_FILE"; do
      if [ "$f" = "$BINDIR/tapedeck" ] && [ "$(readlink "$D$f" 2>/dev/null || true)" != "$PREFIX/bin/tapedeck" ]; then continue; fi
      if [ -L "$D$f" ] || [ -f "$D$f" ]; then rm -f "$D$f"; removed=$((removed + 1)); say "removed $D$f"; fi
    done
  fi
  if [ -d "$P" ]; then
    rm -rf "$P"
    say "removed $P"
    removed=$((removed + 1))
  fi
  if [ "$LIVE" = no ]; then
    # Staging tree: drop the folders this script created when they are now empty.
    rmdir "$D$UNIT_DIR" "$D$SYSTEMD_LIBDIR/sysusers.d" "$D$SYSTEMD_LIBDIR/tmpfiles.d" "$D$SYSTEMD_LIBDIR/modules-load.d" 2>/dev/null || true
  fi
  if [ "$LIVE" = yes ] && [ "$SYSTEMD_RUNNING" = yes ]; then
    systemctl_quiet daemon-reload
    systemctl_quiet reset-failed tapedeck.service tapedeck-stager.service
  fi
  if [ "$PURGE" = yes ]; then
    for d in "$CONF_DIR" "$STATE_DIR" "$CACHE_DIR" "$RUN_DIR"; do
      if [ -e "$D$d" ]; then rm -rf "$D$d"; say "purged $D$d"; removed=$((removed + 1)); fi
    done
    if [ "$LIVE" = yes ] && getent passwd tapedeck >/dev/null 2>&1; then
      if have userdel; then
        userdel tapedeck && say "removed user tapedeck" && removed=$((removed + 1))
        if getent group tapedeck >/dev/null 2>&1 && have groupdel; then groupdel tapedeck || true; fi
      else
        note "userdel not found: remove the user tapedeck by hand"
      fi
    fi
  else
    kept=
    for d in "$CONF_DIR" "$STATE_DIR" "$CACHE_DIR"; do
      [ -e "$D$d" ] && kept="$kept $D$d"
    done
    [ -z "$kept" ] || say "kept (remove with --uninstall --purge):$kept"
    [ "$LIVE" = no ] || ! getent passwd tapedeck >/dev/null 2>&1 || say "kept the user tapedeck (files on your disks and tapes may belong to it)"
  fi
  [ "$removed" -gt 0 ] || say "nothing to remove: Tapedeck is not installed under $D$PREFIX"
  exit 0
}

[ "$ACTION" = install ] || uninstall

# ---------------------------------------------------------------- install

[ -f "$SRC/package.json" ] || die "$SRC/package.json not found: run this script from a Tapedeck checkout or release tree"
for f in tapedeck.service tapedeck-stager.service tapedeck.sysusers tapedeck.tmpfiles tapedeck.modules-load tapedeck.conf; do
  [ -f "$SCRIPT_DIR/$f" ] || die "$SCRIPT_DIR/$f is missing"
done

# Node.js >= 20 is the one hard requirement (at build time and at run time).
have node || die "Node.js >= 20 is required (node not found on PATH); on Debian: apt install nodejs"
NODE=$(command -v node)
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "Node.js >= 20 is required, found $(node --version) at $NODE"
case $NODE in
  /usr/* | /opt/* | /bin/* | /snap/*) ;;
  *) note "warning: node is at $NODE; the service runs as user tapedeck with /home read-only and the launcher looks for node on the system PATH (/usr/local/bin, /usr/bin): set Environment=TAPEDECK_NODE=... in a drop-in if it is not found" ;;
esac

P=$D$PREFIX
if [ -e "$P" ] && ! ours "$P"; then
  die "$P exists, is not empty and was not installed by this script: choose another --prefix"
fi

# 1. Build dist/ when it is missing or older than the sources.
CLI_JS=$SRC/dist/src/cli.js
needs_build=no
if [ ! -f "$CLI_JS" ]; then
  needs_build=yes
elif [ -d "$SRC/src" ] && [ -n "$(find "$SRC/src" "$SRC/tsconfig.json" -newer "$CLI_JS" \( -name '*.ts' -o -name tsconfig.json \) -print 2>/dev/null | head -n 1)" ]; then
  needs_build=yes
fi
if [ "$needs_build" = yes ] && [ "$BUILD" = no ]; then
  [ -f "$CLI_JS" ] || die "dist/ is missing and --no-build was given"
  note "warning: dist/ is older than the sources; using it as it is (--no-build)"
  needs_build=no
fi
if [ "$needs_build" = yes ]; then
  [ -d "$SRC/src" ] || die "dist/ is missing and there are no sources to build it from"
  have npm || die "building needs npm (apt install npm), or install from a release tarball that contains dist/"
  if [ ! -x "$SRC/node_modules/.bin/tsc" ]; then
    say "installing the build dependencies (npm ci) in $SRC"
    (cd "$SRC" && npm ci --no-audit --no-fund) || die "npm ci failed in $SRC"
  fi
  say "building (npm run build) in $SRC"
  (cd "$SRC" && npm run --silent build) || die "the build failed (npm run build in $SRC)"
  [ -f "$CLI_JS" ] || die "the build did not produce $CLI_JS"
else
  say "dist/ is up to date"
fi

# 2. Assemble the new tree beside the old one, then swap.
PARENT=$(dirname "$P")
mkdir -p "$PARENT"
NEW=$PARENT/.tapedeck-new.$$
OLD=$PARENT/.tapedeck-old.$$
cleanup() { rm -rf "$NEW" "$OLD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$NEW"
mkdir -p "$NEW/dist" "$NEW/bin" "$NEW/share/tapedeck" "$NEW/share/doc/tapedeck"
# Only the application's own code: not the compiled tests, benches or source maps.
cp -RP "$SRC/dist/src" "$NEW/dist/src"
find "$NEW/dist" -name '*.map' -type f -exec rm -f {} +
cp "$SRC/package.json" "$NEW/package.json"
[ -f "$SRC/package-lock.json" ] && cp "$SRC/package-lock.json" "$NEW/package-lock.json"
[ -d "$SRC/devices" ] && cp -RP "$SRC/devices" "$NEW/devices"
cp "$SRC/bin/tapedeck" "$NEW/bin/tapedeck"
chmod 0755 "$NEW/bin/tapedeck"
cp "$SCRIPT_DIR/tapedeck.conf" "$NEW/share/tapedeck/tapedeck.conf.default"
[ -f "$SCRIPT_DIR/README.md" ] && cp "$SCRIPT_DIR/README.md" "$NEW/share/doc/tapedeck/systemd.md"

# 3. Production dependencies.
# Prints "path<TAB>optional" for every non-dev package of the lock file whose
# folder holds the locked version under $1 (a node_modules folder), and
# "missing<TAB>path" for the required ones that are absent or different.
prod_deps() {
  node - "$SRC/package-lock.json" "$1" <<'NODE'
const fs = require('node:fs');
const path = require('node:path');
const [lockFile, from] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
if (!lock.packages) { console.log('missing\tpackage-lock.json has no "packages" (lockfile v2 or later needed)'); process.exit(0); }
const base = path.dirname(path.resolve(from));
for (const [key, meta] of Object.entries(lock.packages)) {
  if (!key.startsWith('node_modules/') || meta.dev || meta.link) continue;
  let version;
  try { version = JSON.parse(fs.readFileSync(path.join(base, key, 'package.json'), 'utf8')).version; } catch {}
  if (version === undefined || (meta.version && version !== meta.version)) {
    if (!meta.optional && !meta.devOptional) console.log(`missing\t${key}`);
    continue;
  }
  console.log(`${key}\t${meta.optional ? 1 : 0}`);
}
NODE
}

copy_deps() { # $1 = node_modules folder to copy from
  from_root=$(cd "$1/.." && pwd -P)
  list=$(prod_deps "$1") || return 1
  if printf '%s\n' "$list" | grep -q '^missing'; then
    printf '%s\n' "$list" | grep '^missing' | cut -f2 | head -n 5 | sed 's/^/  missing or different: /' >&2
    return 1
  fi
  mkdir -p "$NEW/node_modules" || return 1
  copied=
  count=0
  # Sorted, so a package comes before the ones nested in it (which it carries along).
  for key in $(printf '%s\n' "$list" | cut -f1 | LC_ALL=C sort); do
    skip=no
    for c in $copied; do
      case $key in "$c"/*) skip=yes; break ;; esac
    done
    [ "$skip" = no ] || continue
    mkdir -p "$(dirname "$NEW/$key")" || return 1
    cp -RP "$from_root/$key" "$NEW/$key" || return 1
    copied="$copied $key"
    count=$((count + 1))
  done
  say "copied $count production packages from $1"
}

npm_deps() {
  have npm || die "npm is needed to install the dependencies (apt install npm), or pass --node-modules-from DIR"
  [ -f "$NEW/package-lock.json" ] || die "package-lock.json is missing: cannot run npm ci"
  say "installing the production dependencies (npm ci --omit=dev) in the prefix"
  (cd "$NEW" && npm ci --omit=dev --no-audit --no-fund) || die "npm ci --omit=dev failed"
}

if [ "$USE_NPM" = yes ]; then
  npm_deps
elif [ -n "$NODE_MODULES_FROM" ]; then
  [ -d "$NODE_MODULES_FROM" ] || die "--node-modules-from: $NODE_MODULES_FROM is not a directory"
  copy_deps "$NODE_MODULES_FROM" || die "$NODE_MODULES_FROM does not hold every production dependency of package-lock.json"
elif [ -d "$SRC/node_modules" ] && copy_deps "$SRC/node_modules"; then
  :
else
  npm_deps
fi

# Record what lives outside the prefix, for --uninstall.
{
  say "# Files installed by systemd/install.sh outside $PREFIX; removed by --uninstall."
  say "$BINDIR/tapedeck"
  for u in $UNITS; do say "$UNIT_DIR/$u"; done
  say "$SYSUSERS_FILE"
  say "$TMPFILES_FILE"
  say "$MODULES_FILE"
} >"$NEW/share/tapedeck/install-manifest"

# The previously shipped default config, to tell an edited /etc copy from an untouched one.
PREV_DEFAULT=
if [ -f "$P/share/tapedeck/tapedeck.conf.default" ]; then
  PREV_DEFAULT=$NEW/share/tapedeck/previous.conf
  cp "$P/share/tapedeck/tapedeck.conf.default" "$PREV_DEFAULT"
fi

if [ -d "$P" ]; then
  mv "$P" "$OLD"
  mv "$NEW" "$P"
  rm -rf "$OLD"
  say "upgraded $P"
else
  mv "$NEW" "$P"
  say "installed $P"
fi
if [ -n "$PREV_DEFAULT" ]; then
  PREV_DEFAULT=$P/share/tapedeck/previous.conf
fi

# 4. Command, units, sysusers/tmpfiles/modules-load entries, documentation.
mkdir -p "$D$BINDIR"
if [ -e "$D$BINDIR/tapedeck" ] && [ ! -L "$D$BINDIR/tapedeck" ]; then
  note "warning: $D$BINDIR/tapedeck exists and is not a link: left alone (run $PREFIX/bin/tapedeck)"
else
  ln -sfn "$PREFIX/bin/tapedeck" "$D$BINDIR/tapedeck"
fi

install_file() { # mode src dest
  mkdir -p "$(dirname "$3")"
  cp "$2" "$3.tmp.$$"
  chmod "$1" "$3.tmp.$$"
  mv -f "$3.tmp.$$" "$3"
}
mkdir -p "$D$UNIT_DIR"
for u in $UNITS; do
  sed "s|/opt/tapedeck|$PREFIX|g" "$SCRIPT_DIR/$u" >"$D$UNIT_DIR/$u.tmp.$$"
  chmod 0644 "$D$UNIT_DIR/$u.tmp.$$"
  mv -f "$D$UNIT_DIR/$u.tmp.$$" "$D$UNIT_DIR/$u"
done
install_file 0644 "$SCRIPT_DIR/tapedeck.sysusers" "$D$SYSUSERS_FILE"
install_file 0644 "$SCRIPT_DIR/tapedeck.tmpfiles" "$D$TMPFILES_FILE"
install_file 0644 "$SCRIPT_DIR/tapedeck.modules-load" "$D$MODULES_FILE"
say "installed the units and entries under $D$SYSTEMD_LIBDIR"

# 5. Configuration: never overwrite an edited one (as dpkg does with conffiles).
NEW_CONF=$SCRIPT_DIR/tapedeck.conf
mkdir -p "$D$CONF_DIR"
if [ ! -e "$D$CONF_FILE" ]; then
  install_file 0644 "$NEW_CONF" "$D$CONF_FILE"
  say "installed the default configuration $D$CONF_FILE"
elif cmp -s "$NEW_CONF" "$D$CONF_FILE"; then
  say "configuration $D$CONF_FILE is the current default"
elif [ -n "$PREV_DEFAULT" ] && cmp -s "$PREV_DEFAULT" "$D$CONF_FILE"; then
  install_file 0644 "$NEW_CONF" "$D$CONF_FILE"
  say "updated the unedited configuration $D$CONF_FILE to the new default"
else
  install_file 0644 "$NEW_CONF" "$D$CONF_FILE.dist"
  say "kept your edited configuration $D$CONF_FILE; the new default is $D$CONF_FILE.dist"
fi
rm -f "$P/share/tapedeck/previous.conf"

# 6. Optional tools.
report_tool() { # name purpose debian-package
  if have "$1"; then
    say "  $1: found at $(command -v "$1") ($2)"
  else
    say "  $1: not found (optional: $2; Debian package $3)"
  fi
}
say "optional tools:"
report_tool ffprobe "richer video metadata" ffmpeg
report_tool mt "tape drive control" mt-st
report_tool mtx "tape changer control" mtx

# 7. Live system: user, directories, service.
if [ "$LIVE" = no ]; then
  say "staged into $D: the package must run systemd-sysusers, systemd-tmpfiles --create and systemctl daemon-reload on install"
  exit 0
fi

if have systemd-sysusers; then
  systemd-sysusers "$SYSUSERS_FILE"
else
  getent group tapedeck >/dev/null 2>&1 || groupadd --system tapedeck
  getent passwd tapedeck >/dev/null 2>&1 ||
    useradd --system --gid tapedeck --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin --comment "Tapedeck media server" tapedeck
  getent group tape >/dev/null 2>&1 || groupadd --system tape
  usermod -a -G tape tapedeck
fi
say "user: $(id tapedeck)"
if have systemd-tmpfiles; then
  systemd-tmpfiles --create "$TMPFILES_FILE"
else
  for d in "$STATE_DIR" "$STATE_DIR/vtl" "$CACHE_DIR" "$RUN_DIR"; do
    mkdir -p "$d"
    chown tapedeck:tapedeck "$d"
    chmod 0750 "$d"
  done
fi

if [ "$SYSTEMD_RUNNING" = no ]; then
  say "systemd is not running here (no /run/systemd/system): not enabling or starting the service."
  say "Start it by hand:  runuser -u tapedeck -- env STATE_DIRECTORY=$STATE_DIR CACHE_DIRECTORY=$CACHE_DIR $BINDIR/tapedeck serve --config $CONF_FILE"
  exit 0
fi
systemctl daemon-reload
if [ "$START" = no ]; then
  if systemctl is-active --quiet tapedeck.service; then
    say "not restarting (--no-start): tapedeck.service still runs the previous version; apply with:  systemctl restart tapedeck; systemctl try-restart tapedeck-stager (server and stager must run the same release)"
  else
    say "not starting (--no-start). Start it with:  systemctl enable --now tapedeck.service"
  fi
  exit 0
fi
systemctl enable tapedeck.service
# restart = start when stopped; an upgrade replaces the running version.
systemctl restart tapedeck.service
systemctl try-restart tapedeck-stager.service
# Type=exec returns as soon as the process runs: watch it for a few seconds,
# so a bad configuration is reported here rather than in a restart loop.
i=0
state=
while [ $i -lt 5 ]; do
  sleep 1
  i=$((i + 1))
  state=$(systemctl show -p ActiveState --value tapedeck.service)/$(systemctl show -p SubState --value tapedeck.service)
  [ "$state" = active/running ] || break
done
if [ "$state" = active/running ]; then
  say "tapedeck.service is running; logs: journalctl -u tapedeck -f"
else
  systemctl --no-pager status tapedeck.service || true
  die "tapedeck.service did not stay up ($state): see journalctl -u tapedeck"
fi
