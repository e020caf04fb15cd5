#!/usr/bin/env bash
# Installs the Debian packages the project needs, when they are missing, and starts
# MariaDB and Redis when they are not running. Idempotent; needs root on Debian bookworm.
set -euo pipefail

log() { printf '[install-system] %s\n' "$*" >&2; }

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (apt-get, services)"
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

restic_ok() {
  command -v restic >/dev/null 2>&1 || return 1
  local v
  v=$(restic version 2>/dev/null | awk '{print $2}')
  # 0.16 or newer
  [[ $(printf '%s\n0.16.0\n' "$v" | sort -V | head -n1) == "0.16.0" ]]
}

# Debian trixie as a source pinned low (priority 100): only what is asked for with -t trixie
# comes from it (restic 0.18, rest-server 0.13), everything else stays bookworm's.
trixie_source() {
  local list=/etc/apt/sources.list.d/trixie-restic.sources
  if [[ ! -f $list ]]; then
    cat >"$list" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat >/etc/apt/preferences.d/trixie-low <<'PREF'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
    apt_updated=0
  fi
}

install_restic() {
  restic_ok && return 0
  log "installing restic 0.18 from Debian trixie (bookworm's 0.14 is too old)"
  trixie_source
  apt_install -t trixie restic
  restic_ok || { log "restic >= 0.16 could not be installed"; exit 1; }
}

# The tests' remote repositories: restic's rest-server (not in bookworm) and OpenSSH's sftp
# server. Both are run by the tests as their own children on loopback; the system's own sshd
# is kept from starting (Debian's sshd_not_to_be_run) when this script is what installed it.
install_repository_servers() {
  if ! command -v restic-rest-server >/dev/null 2>&1; then
    log "installing restic-rest-server from Debian trixie"
    trixie_source
    apt_install -t trixie restic-rest-server
  fi
  if [[ ! -x /usr/sbin/sshd ]]; then
    log "installing openssh-server (its system service left stopped)"
    mkdir -p /etc/ssh
    touch /etc/ssh/sshd_not_to_be_run
    apt_install openssh-server
  fi
}

main() {
  need_root
  local pkgs=()
  command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || pkgs+=(mariadb-server mariadb-client)
  command -v mysqldump >/dev/null 2>&1 || pkgs+=(mariadb-client)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  command -v nginx >/dev/null 2>&1 || pkgs+=(nginx-light)
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  command -v shellcheck >/dev/null 2>&1 || pkgs+=(shellcheck)
  command -v rsync >/dev/null 2>&1 || pkgs+=(rsync)
  command -v jq >/dev/null 2>&1 || pkgs+=(jq)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  # customer-download: zip packs chosen paths; openssl hashes archives (SHA instructions)
  command -v zip >/dev/null 2>&1 || pkgs+=(zip)
  command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
  # promtool checks and unit-tests the alert rules (deploy/prometheus)
  command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
  if ((${#pkgs[@]})); then
    log "installing: ${pkgs[*]}"
    apt_install "${pkgs[@]}"
  fi
  install_restic
  install_repository_servers

  if ! mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
    log "starting MariaDB"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do mariadb-admin --protocol=socket ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 40); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.25; done
  fi
  if ! command -v pnpm >/dev/null 2>&1 || [[ $(pnpm --version 2>/dev/null | cut -d. -f1) != 10 ]]; then
    log "installing pnpm 10"
    npm i -g pnpm@10 >/dev/null 2>&1
  fi
}

main "$@"
