#!/bin/bash
# A throwaway systemd machine for checking the units for real on a host where
# systemd is not PID 1 (CI runners, containers, build hosts).
#
#   container.sh boot NETNS WORKDIR   boot systemd as PID 1 in new pid/mount/uts/
#                                     ipc/cgroup namespaces inside network
#                                     namespace NETNS ("-" for a new, empty one);
#                                     returns once the system is up
#   container.sh exec WORKDIR CMD...  run CMD inside it (as root)
#   container.sh down WORKDIR         power it off and clean up
#
# The machine's root is an overlay of / with a tmpfs upper layer: everything
# it writes (an installation, users, /var, /tmp cleanups) vanishes with it, and
# the host's files, mounts, users and network stay untouched. Its systemd
# starts basic.target with the units that touch the host's kernel or hardware
# masked (udev, sysctl, modules, clock, getty), plus the usual daemons.
# Needs root with CAP_SYS_ADMIN, overlayfs, cgroup v2 and util-linux
# (unshare, nsenter, pivot_root). Used by test/systemd.test.ts when
# TAPEDECK_CONTAINER_TEST=1.
set -euo pipefail

die() { echo "container.sh: $*" >&2; exit 1; }

mask_units() { # run inside the new root before systemd starts
  cd /etc/systemd/system
  for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service systemd-modules-load.service \
    systemd-sysctl.service systemd-timesyncd.service systemd-timedated.service getty@tty1.service \
    console-getty.service getty.target serial-getty@.service systemd-logind.service \
    systemd-pstore.service systemd-remount-fs.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount systemd-random-seed.service systemd-hwdb-update.service \
    systemd-journald-audit.socket systemd-firstboot.service systemd-machine-id-commit.service \
    systemd-update-utmp.service systemd-networkd.service systemd-resolved.service networking.service \
    ifupdown-pre.service NetworkManager.service wpa_supplicant.service ssh.service cron.service \
    ldconfig.service systemd-boot-update.service dev-hugepages.mount dev-mqueue.mount \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-fs-fuse-connections.mount apt-daily.timer apt-daily-upgrade.timer man-db.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer logrotate.timer \
    minidlna.service postgresql.service; do
    ln -sf /dev/null "$u"
  done
}

boot() {
  local netns=$1 w=$2
  [ "$(id -u)" -eq 0 ] || die "needs root"
  for c in unshare nsenter pivot_root findmnt; do command -v "$c" >/dev/null || die "$c not found"; done
  [ -x /lib/systemd/systemd ] || die "/lib/systemd/systemd not found"
  mkdir -p "$w"
  w=$(cd "$w" && pwd -P)
  local log=$w/boot.log
  local -a enter=()
  [ "$netns" = - ] || enter=(ip netns exec "$netns")
  # The inner part runs in the target network namespace (ip netns exec gives it a
  # private mount namespace with a fresh /sys, so cgroup2 is mounted afresh).
  setsid "${enter[@]}" "$0" _inner "$w" "$netns" >"$log" 2>&1 < /dev/null &
  local i
  for i in $(seq 1 150); do
    if [ -s "$w/pid1" ]; then
      # degraded is fine for us: one of the host's own units may fail in here
      case $(nsenter -t "$(cat "$w/pid1")" -a -r -w systemctl is-system-running 2>/dev/null || true) in
        running | degraded) return 0 ;;
      esac
    fi
    sleep 0.2
  done
  cat "$log" >&2
  die "systemd did not come up (see $log)"
}

inner() {
  local w=$1 netns=$2
  local cgroot
  cgroot=$(findmnt -rn -t cgroup2 -o TARGET | head -n1 || true)
  if [ -z "$cgroot" ]; then
    mkdir -p "$w/cg"
    mount -t cgroup2 cgroup2 "$w/cg"
    cgroot=$w/cg
  fi
  local cg=$cgroot/tapedeck-container-$$
  mkdir "$cg"
  echo "$$" >"$cg/cgroup.procs"
  echo "$cg" >"$w/cgroup"
  local -a net=()
  [ "$netns" != - ] || net=(--net)
  exec unshare --mount --propagation private --pid --fork --uts --ipc --cgroup "${net[@]}" -- "$0" _root "$w"
}

mkroot() { # PID 1 of the new pid namespace, still on the host's root
  local w=$1 r
  mkdir -p "$w/rw" "$w/root"
  mount -t tmpfs -o mode=755 tapedeck-rw "$w/rw"
  mkdir -p "$w/rw/upper" "$w/rw/work"
  mount -t overlay tapedeck-root -o "lowerdir=/,upperdir=$w/rw/upper,workdir=$w/rw/work" "$w/root"
  r=$w/root
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys"
  mount -o remount,bind,ro "$r/sys"
  umount -R "$r/sys/fs/cgroup" 2>/dev/null || true
  mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
  mount -t tmpfs -o mode=755,nosuid tapedeck-dev "$r/dev"
  local d
  for d in null zero full random urandom tty; do
    touch "$r/dev/$d"
    mount --bind "/dev/$d" "$r/dev/$d"
  done
  mkdir -p "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
  ln -s pts/ptmx "$r/dev/ptmx"
  ln -s /proc/self/fd "$r/dev/fd"
  mount -t tmpfs -o mode=1777 tapedeck-shm "$r/dev/shm"
  mount -t tmpfs -o mode=755 tapedeck-run "$r/run"
  mount -t tmpfs -o mode=1777 tapedeck-tmp "$r/tmp"
  hostname tapedeck-check
  chroot "$r" /bin/bash -c "$(declare -f mask_units); mask_units"
  # The host PID of our systemd: this process's PID as seen from outside.
  # (/proc is still the host's here, and bash itself opens /proc/self/status.)
  local k v rest
  while read -r k v rest; do
    if [ "$k" = NSpid: ]; then echo "$v" >"$w/pid1"; fi
  done </proc/self/status
  # pivot_root, not chroot: the kernel refuses user namespaces (PrivateUsers=)
  # to a chrooted process.
  mkdir -p "$r/.oldroot"
  cd "$r"
  pivot_root . .oldroot
  umount -l /.oldroot
  exec /usr/bin/env -i container=tapedeck-check TERM=dumb /lib/systemd/systemd --system --unit=basic.target --show-status=no
}

cexec() {
  local w=$1
  shift
  [ -s "$w/pid1" ] || die "no machine in $w"
  exec nsenter -t "$(cat "$w/pid1")" -a -r -w "$@"
}

down() {
  local w=$1 pid i
  if [ -s "$w/pid1" ]; then
    pid=$(cat "$w/pid1")
    if kill -0 "$pid" 2>/dev/null; then
      kill -s RTMIN+4 "$pid" || true # poweroff
      for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      for i in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$w/pid1"
  fi
  if [ -s "$w/cgroup" ]; then
    local cg
    cg=$(cat "$w/cgroup")
    # The cgroup2 mount of the boot step may be gone: look for the same tree in ours.
    if [ ! -d "$cg" ]; then
      local root
      root=$(findmnt -rn -t cgroup2 -o TARGET | head -n1 || true)
      cg=${root:+$root/$(basename "$cg")}
    fi
    [ -n "$cg" ] && [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rm -f "$w/cgroup"
  fi
}

case ${1:-} in
  boot) [ $# -eq 3 ] || die "usage: boot NETNS WORKDIR"; boot "$2" "$3" ;;
  exec) [ $# -ge 3 ] || die "usage: exec WORKDIR CMD..."; w=$2; shift 2; cexec "$w" "$@" ;;
  down) [ $# -eq 2 ] || die "usage: down WORKDIR"; down "$2" ;;
  _inner) inner "$2" "$3" ;;
  _root) mkroot "$2" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
