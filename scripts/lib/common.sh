# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Shared plumbing for the backup executors: configuration, NDJSON events,
# argument validation, child processes that can be interrupted, failure path.
#
# Standard output is reserved for NDJSON events. init_io moves the original
# stdout to fd 3 and points fd 1 at stderr, so nothing a child prints can ever
# corrupt the event stream; emit() is the only writer of fd 3.

readonly EXIT_OK=0 EXIT_FAILED=1 EXIT_INVALID=2 EXIT_REFUSED=3 EXIT_LOCKED=4 \
  EXIT_UNAVAILABLE=5 EXIT_INTERRUPTED=6
export EXIT_OK EXIT_FAILED EXIT_INVALID EXIT_REFUSED EXIT_LOCKED EXIT_UNAVAILABLE EXIT_INTERRUPTED

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
CHILD_PID=""
INTERRUPTED=0
ERR_CODE=""
ERR_MESSAGE=""
DEFAULT_ERR_CODE="BACKUP_FAILED"
TMP_DIR=""

init_io() {
  exec 3>&1 1>&2
  ORIGINAL_UMASK="$(umask)"
  umask 077
  export LC_ALL=C.UTF-8
}

log() { printf '[%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2; }

# emit <jq program> [jq args...]: one compact JSON object on the event channel.
emit() {
  local program=$1
  shift
  jq -nc "$program" "$@" >&3
}
# A phase name is a constant of the scripts ([A-Z_]): printed as is, without starting a jq.
emit_phase() {
  if [[ $1 =~ ^[A-Z_]{1,40}$ ]]; then
    printf '{"type":"phase","phase":"%s"}\n' "$1" >&3
  else
    emit '{type:"phase",phase:$p}' --arg p "$1"
  fi
}
now_ms() { date +%s%3N; }

# die <CODE> <exit status> <message a customer can read>
die() {
  ERR_CODE=$1
  ERR_MESSAGE=$3
  exit "$2"
}

# Called from the EXIT trap of every script, after its own cleanup/rollback.
report_failure() {
  local rc=$1
  if ((rc != 0)); then
    if [[ -z $ERR_CODE ]]; then
      if ((INTERRUPTED)); then
        ERR_CODE=INTERRUPTED ERR_MESSAGE="The operation was interrupted; nothing was changed."
      else
        ERR_CODE=$DEFAULT_ERR_CODE ERR_MESSAGE="The operation failed unexpectedly; nothing was changed."
      fi
    fi
    log "ERROR $ERR_CODE: $ERR_MESSAGE"
    emit '{type:"error",code:$c,message:$m}' --arg c "$ERR_CODE" --arg m "$ERR_MESSAGE" || true
  fi
}

# make_tmp_dir <owner>: this run's scratch folder, $WORK_DIR/tmp/<owner>.XXXXXXXX (under the
# data folder, never a shared /tmp: it holds listings of customers' files). Its .owner file is
# locked (fd 8) for as long as the script or any child it started lives, so a folder whose
# lock is free belongs to a script that was killed: remove_stale_tmp_dirs removes it.
make_tmp_dir() {
  mkdir -p -- "$WORK_DIR/tmp"
  TMP_DIR="$(mktemp -d "$WORK_DIR/tmp/${1:-script}.XXXXXXXX")"
  exec 8>"$TMP_DIR/.owner"
  flock -n 8 || true
}
remove_tmp_dir() { [[ -n $TMP_DIR && -d $TMP_DIR ]] && rm -rf -- "$TMP_DIR"; return 0; }

# remove_stale_tmp_dirs <owner prefix> <minutes>: the scratch folders of killed scripts. A
# folder is stale once nothing holds its lock. One made in the last <minutes> is left alone
# (its script may not have locked it yet), unless that is 0: under a customer's lock, where
# no other script of that customer can be making one.
remove_stale_tmp_dirs() {
  local dir
  for dir in "$WORK_DIR/tmp/$1"*/; do
    dir=${dir%/}
    [[ -d $dir && $dir != "$TMP_DIR" ]] || continue
    (($2 == 0)) || [[ -n $(find "$dir" -maxdepth 0 -mmin "+$2") ]] || continue
    if flock -n "$dir/.owner" true 2>/dev/null; then
      log "Removing the scratch folder of an interrupted run: $dir"
      rm -rf -- "$dir"
    fi
  done
}

# --- signals ---------------------------------------------------------------
# SIGTERM/SIGINT only set a flag and are forwarded (as SIGTERM) to the running
# child and to every running branch (BRANCH_PIDS, branches.sh), so restic can release
# its lock and mysqldump can stop cleanly; the script then rolls back at the
# next check_interrupted and exits 6.
on_signal() {
  INTERRUPTED=1
  if [[ -n $CHILD_PID ]]; then kill -TERM "$CHILD_PID" 2>/dev/null || true; fi
  local pid
  for pid in "${BRANCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
install_signal_traps() { trap on_signal TERM INT; }

check_interrupted() {
  if ((INTERRUPTED)); then
    die INTERRUPTED "$EXIT_INTERRUPTED" "The operation was interrupted before it finished; the site was left as it was."
  fi
}

# run_child <cmd...>: run in the background and wait, so a signal reaches us
# (bash defers traps while a foreground child runs). Returns the child's status.
run_child() {
  "$@" 3>&- &
  CHILD_PID=$!
  _wait_child
}
# run_child_stdin <file> <cmd...>: same with stdin from a file (async commands
# otherwise get /dev/null).
run_child_stdin() {
  local input=$1
  shift
  "$@" <"$input" 3>&- &
  CHILD_PID=$!
  _wait_child
}
_wait_child() {
  local rc=0
  # A signal that came before CHILD_PID was known (or before the child started)
  # reaches the child now.
  if ((INTERRUPTED)); then kill -TERM "$CHILD_PID" 2>/dev/null || true; fi
  _wait_pid "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}
# _wait_pid <pid>: waits until a child has ended and returns its status. wait returns
# early (>128) when a trapped signal arrives: then the real end is waited for. Once
# interrupted, SIGTERM is repeated every 2 s, since one that reached the child between its
# fork and its exec is lost.
_wait_pid() {
  local pid=$1 rc=0 ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((INTERRUPTED)); then
      sleep 0.2
      if ((++ticks % 10 == 0)); then kill -TERM "$pid" 2>/dev/null || true; fi
      continue
    fi
    rc=0
    wait "$pid" || rc=$?
    kill -0 "$pid" 2>/dev/null || return "$rc"
  done
  # Ended while polled (or before): its status as bash kept it.
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# --- configuration ---------------------------------------------------------
# The env file is parsed, not sourced: only BACKUPS_* keys, values taken
# literally (optional surrounding quotes removed), environment wins.
load_env_file() {
  local file=$1 line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line="${line#"${line%%[![:space:]]*}"}"
    [[ -z $line || $line == \#* ]] && continue
    line="${line#export }"
    [[ $line =~ ^(BACKUPS_[A-Z0-9_]+)=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value="${value%"${value##*[![:space:]]}"}"
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    if [[ -z ${!key+x} ]]; then
      printf -v "$key" '%s' "$value"
      export "${key?}"
    fi
  done <"$file"
}

load_config() {
  load_env_file "${BACKUPS_ENV_FILE:-$PROJECT_DIR/data/backups.env}"
  DATA_DIR=${BACKUPS_DATA_DIR:-$PROJECT_DIR/data}
  CUSTOMERS_ROOT=${BACKUPS_CUSTOMERS_ROOT:-$DATA_DIR/customers}
  WORK_DIR=${BACKUPS_WORK_DIR:-$DATA_DIR/work}
  RESTIC_BIN=${BACKUPS_RESTIC_BIN:-restic}
  RETRY_LOCK=${BACKUPS_RESTIC_RETRY_LOCK:-2m}
  DB_DEFAULTS_FILE=${BACKUPS_CUSTOMER_DB_DEFAULTS_FILE:-$DATA_DIR/secrets/customer-db.cnf}
  SITE_STOP_COMMAND=${BACKUPS_SITE_STOP_COMMAND:-docker compose down}
  SITE_START_COMMAND=${BACKUPS_SITE_START_COMMAND:-docker compose up -d}
  LEGACY_DUMP_DIR=${BACKUPS_LEGACY_DUMP_DIR:-/tmp/shophosting-db-dumps}
  MANUAL_KEEP=${BACKUPS_MANUAL_KEEP:-5}
  SAFETY_KEEP=${BACKUPS_SAFETY_KEEP:-3}
  DAILY_KEEP_DAYS=${BACKUPS_DAILY_KEEP_DAYS:-30}
  SPACE_MARGIN_MB=${BACKUPS_SPACE_MARGIN_MB:-64}
  # Largest site (files + database) a backup takes, in bytes; 0: no limit.
  SITE_MAX_BYTES=${BACKUPS_SITE_MAX_BYTES:-107374182400}
  export RESTIC_CACHE_DIR=${BACKUPS_RESTIC_CACHE_DIR:-$DATA_DIR/cache/restic}
  # restic throttles its own --json status lines to this rate.
  export RESTIC_PROGRESS_FPS=4
  # Only RESTIC_PASSWORD_FILE (set by resolve_repository) may carry a secret.
  unset RESTIC_PASSWORD RESTIC_PASSWORD_COMMAND RESTIC_REPOSITORY_FILE RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
  local n
  for n in "$MANUAL_KEEP" "$SAFETY_KEEP" "$DAILY_KEEP_DAYS" "$SPACE_MARGIN_MB" "$SITE_MAX_BYTES"; do
    # No leading zero (bash would read the number as octal), no more than 18 digits.
    [[ $n =~ ^(0|[1-9][0-9]{0,17})$ ]] || die INVALID_ARGUMENT "$EXIT_INVALID" "The backup configuration is invalid."
  done
}

site_dir() { printf '%s/customer-%s' "$CUSTOMERS_ROOT" "$1"; }

# The content folder is the part of a site a files restore replaces.
content_rel_of() {
  local site=$1
  if [[ -d $site/wordpress ]]; then
    echo wordpress
  elif [[ -d $site/volumes/files ]]; then
    echo volumes/files
  fi
}

# Serialises every script touching one customer (held until exit via fd 9).
lock_customer() {
  local customer=$1
  mkdir -p "$WORK_DIR/locks"
  exec 9>"$WORK_DIR/locks/customer-$customer.lock"
  flock -n 9 && return 0
  local started
  started=$(now_ms)
  if ! flock -w "${BACKUPS_LOCK_WAIT_SECONDS:-600}" 9; then
    emit_lock_wait "$started"
    die "$DEFAULT_ERR_CODE" "$EXIT_FAILED" "Another backup operation for this site is still running."
  fi
  emit_lock_wait "$started"
}

# emit_lock_wait <start ms>: how long the script waited for the customer's lock (metrics).
emit_lock_wait() {
  emit '{type:"lock_wait",seconds:(($now - $start) / 1000)}' \
    --argjson now "$(now_ms)" --argjson start "$1" || true
}

# run_site_command <command> <customer> <site>: the operator's stop/start command (never user
# input) in the site folder, without the lock fd and without this process's environment: it
# holds the worker's secrets (database password, storage keys), and `docker compose` would
# hand any of them a site's compose file names (${AWS_SECRET_ACCESS_KEY}) to the customer's
# container. It gets CUSTOMER_ID, SITE_DIR, the basic variables and DOCKER_*/COMPOSE_*.
run_site_command() {
  local command=$1 customer=$2 site=$3 name
  local -a keep=()
  for name in PATH HOME LANG LC_ALL TZ USER LOGNAME XDG_RUNTIME_DIR; do
    if [[ -n ${!name+set} ]]; then keep+=("$name=${!name}"); fi
  done
  while IFS= read -r name; do
    if [[ $name == DOCKER_* || $name == COMPOSE_* ]]; then keep+=("$name=${!name}"); fi
  done < <(compgen -e)
  # stdin is /dev/null: the worker's stdin is a socket, and a `bash -c` (SHLVL unset by env -i)
  # whose stdin is a socket takes itself for one started by sshd and reads ~/.bashrc first
  # (measured: 0.1-0.3 s of the maintenance window each, stop and start).
  (cd "$site" && umask "$ORIGINAL_UMASK" && exec env -i "${keep[@]}" CUSTOMER_ID="$customer" SITE_DIR="$site" bash -c "$command" </dev/null 3>&- 8>&- 9>&-)
}
