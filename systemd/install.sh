#!/bin/sh
# Install ocrd as a systemd service: unit, sysusers, tmpfiles, logrotate and (if absent) a config.
#
#   sudo systemd/install.sh                  # into /, then creates the user and directories
#   sudo systemd/install.sh --venv           # also (re)installs ocrd into /opt/ocrd/.venv from this tree
#   systemd/install.sh --destdir /tmp/root   # stage into a directory tree (packaging, tests); no side effects
#
# Options:
#   --prefix DIR   where ocrd is installed; the unit runs DIR/.venv/bin/ocrd (default /opt/ocrd)
#   --destdir DIR  prepend DIR to every installed path ($DESTDIR works too); skips sysusers,
#                  tmpfiles and systemctl, which act on the running system
#   --venv         create DIR/.venv if needed and pip install this source tree into it
#
# Idempotent: files are replaced with the same content; an existing /etc/ocrd/config.yaml is never touched.
# Enabling stays a separate, deliberate step: systemctl enable --now ocrd
set -eu

PREFIX=/opt/ocrd
DESTDIR=${DESTDIR:-}
WITH_VENV=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --destdir) DESTDIR=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --venv) WITH_VENV=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute, got $PREFIX" >&2; exit 2 ;; esac
DESTDIR=${DESTDIR%/}

SRC=$(cd "$(dirname "$0")/.." && pwd)
OCRD_BIN="$PREFIX/.venv/bin/ocrd"

say() { echo "install.sh: $*"; }

put() {  # put MODE SOURCE TARGET: install a file, creating its folder
    install -D -m "$1" "$2" "$DESTDIR$3"
    say "installed $3"
}

if [ "$WITH_VENV" = 1 ]; then
    [ -x "$DESTDIR$PREFIX/.venv/bin/python" ] || python3 -m venv "$DESTDIR$PREFIX/.venv"
    "$DESTDIR$PREFIX/.venv/bin/pip" install --upgrade "$SRC"
    say "ocrd installed into $PREFIX/.venv"
fi

# The unit names /opt/ocrd/.venv/bin/ocrd; point it at this prefix.
tmp_unit=$(mktemp)
trap 'rm -f "$tmp_unit"' EXIT
sed "s#/opt/ocrd/.venv/bin/ocrd#$OCRD_BIN#g; s#file:///opt/ocrd/docs/#file://$PREFIX/docs/#g" \
    "$SRC/systemd/ocrd.service" > "$tmp_unit"
put 0644 "$tmp_unit" /etc/systemd/system/ocrd.service
put 0644 "$SRC/systemd/ocrd.sysusers" /etc/sysusers.d/ocrd.conf
put 0644 "$SRC/systemd/ocrd.tmpfiles" /etc/tmpfiles.d/ocrd.conf
put 0644 "$SRC/logrotate/ocrd" /etc/logrotate.d/ocrd
put 0644 "$SRC/docs/operations.md" "$PREFIX/docs/operations.md"

config="$DESTDIR/etc/ocrd/config.yaml"
if [ -e "$config" ]; then
    say "kept existing /etc/ocrd/config.yaml"
else
    mkdir -p "$(dirname "$config")"
    cat > "$config" <<'YAML'
# ocrd configuration for the systemd service (every key: /opt/ocrd/docs and `config.yaml` in the source).
inboxes:
  - name: scans
    path: /srv/ocrd/inbox/scans
    recursive: true
    watch: auto          # poll on SMB/NFS shares: inotify does not see other clients' writes
    settle_s: 2.0
outbox: /srv/ocrd/outbox
archive: /srv/ocrd/archive
quarantine: /srv/ocrd/quarantine
state_dir: /var/lib/ocrd
on_success: archive
workers: {count: auto, intra_op_threads: auto, job_timeout_s: 300}
logging:
  format: json           # journald
  level: info
  file: null             # or /var/log/ocrd/ocrd.log (rotated by /etc/logrotate.d/ocrd)
http:
  enabled: false
  listen: "127.0.0.1:9478"
YAML
    chmod 0640 "$config"
    say "wrote /etc/ocrd/config.yaml"
fi

if [ -n "$DESTDIR" ]; then
    say "staged into $DESTDIR; on the target run: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    say "not root: run systemd-sysusers, systemd-tmpfiles --create /etc/tmpfiles.d/ocrd.conf and systemctl daemon-reload as root"
    exit 0
fi
systemd-sysusers /etc/sysusers.d/ocrd.conf
systemd-tmpfiles --create /etc/tmpfiles.d/ocrd.conf
chgrp ocrd /etc/ocrd/config.yaml
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
[ -x "$OCRD_BIN" ] || say "warning: $OCRD_BIN does not exist yet: install ocrd there (or rerun with --venv)"
say "done. Check with: sudo -u ocrd $OCRD_BIN check -c /etc/ocrd/config.yaml; then: systemctl enable --now ocrd"
