# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# restic wrappers. Every call: --retry-lock, password from a file, fixed cache.

# With --json restic prints ~50 status lines a second; each crosses tee, jq and the worker.
# Four a second are as many as the worker writes (measured: a 531 MB backup 7-21% faster).
export RESTIC_PROGRESS_FPS=${RESTIC_PROGRESS_FPS:-4}

# resolve_repository <manual|daily|safety> [customer]: the ONE place deciding
# which repository and password file serve a customer. A "{customer}" in either
# value shards repositories per customer.
resolve_repository() {
  local kind=$1 customer=${2:-} repo pass
  case $kind in
    manual)
      repo=${BACKUPS_MANUAL_REPOSITORY:-$DATA_DIR/repos/manual}
      pass=${BACKUPS_MANUAL_PASSWORD_FILE:-$DATA_DIR/secrets/manual-repository.pass}
      ;;
    daily)
      repo=${BACKUPS_DAILY_REPOSITORY:-$DATA_DIR/repos/daily}
      pass=${BACKUPS_DAILY_PASSWORD_FILE:-$DATA_DIR/secrets/daily-repository.pass}
      ;;
    safety)
      repo=${BACKUPS_SAFETY_REPOSITORY:-${BACKUPS_MANUAL_REPOSITORY:-$DATA_DIR/repos/manual}}
      pass=${BACKUPS_SAFETY_PASSWORD_FILE:-${BACKUPS_MANUAL_PASSWORD_FILE:-$DATA_DIR/secrets/manual-repository.pass}}
      ;;
    *) die INVALID_ARGUMENT "$EXIT_INVALID" "Unknown repository kind." ;;
  esac
  if [[ ($repo == *"{customer}"* || $pass == *"{customer}"*) && -z $customer ]]; then
    die INVALID_ARGUMENT "$EXIT_INVALID" "This installation keeps one repository per customer: --customer is required."
  fi
  RESTIC_REPOSITORY=${repo//\{customer\}/$customer}
  RESTIC_PASSWORD_FILE=${pass//\{customer\}/$customer}
  export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
}

# restic_run <stdout file> <args...>: stderr goes to $TMP_DIR/restic.err and
# is copied to our stderr (human log).
restic_run() {
  local out=$1 rc=0
  shift
  run_child "$RESTIC_BIN" --retry-lock "$RETRY_LOCK" "$@" >"$out" 2>"$TMP_DIR/restic.err" || rc=$?
  cat "$TMP_DIR/restic.err" >&2
  emit_restic_exit "$1" "$rc"
  return "$rc"
}

# emit_restic_exit <command> <status>: how a restic run ended, for the worker's metrics
# (exit codes 3, 10, 11, 12 tell unreadable files, a missing repository, a lock, a password).
emit_restic_exit() {
  emit '{type:"restic",command:$c,code:($rc|tonumber)}' --arg c "$1" --arg rc "$2" || true
}

# restic_stream <raw output file> <args...>: like restic_run, and every status
# line becomes a progress event while restic runs (restic throttles them).
# PROGRESS_PHASE=<PHASE> adds "phase" to each progress event (steps that run side
# by side: the worker shows only the current phase's progress); PROGRESS_EVENTS=0
# keeps them to the raw file.
restic_stream() {
  local raw=$1 rc=0 fifo="$TMP_DIR/restic.fifo" reader
  shift
  rm -f "$fifo"
  mkfifo "$fifo"
  if [[ ${PROGRESS_EVENTS:-1} == 0 ]]; then
    cat <"$fifo" >"$raw" &
  else
    tee "$raw" <"$fifo" | jq -R --unbuffered -c --arg phase "${PROGRESS_PHASE:-}" '
      fromjson? | select(type == "object" and .message_type == "status")
      | (.percent_done // 0) as $f
      | {type: "progress",
         done: (.bytes_done // .bytes_restored // 0),
         total: (.total_bytes // 0),
         eta: (.seconds_remaining // (if $f > 0 then ((.seconds_elapsed // 0) * (1 - $f) / $f | floor) else null end)),
         fraction: $f}
      + (if $phase == "" then {} else {phase: $phase} end)' >&3 &
  fi
  reader=$!
  run_child "$RESTIC_BIN" --retry-lock "$RETRY_LOCK" "$@" >"$fifo" 2>"$TMP_DIR/restic.err" || rc=$?
  # A child stopped before it opened the pipe leaves the reader waiting for a writer:
  # open and close it once (read-write never blocks), so the reader sees its end.
  local unblock
  exec {unblock}<>"$fifo"
  exec {unblock}>&-
  wait "$reader" || true
  cat "$TMP_DIR/restic.err" >&2
  emit_restic_exit "$1" "$rc"
  return "$rc"
}

# restic_fail <status> <default code> <message>: map restic's exit status to
# an error event and our exit status. Never returns.
restic_fail() {
  local rc=$1 code=$2 message=$3
  check_interrupted
  if ((rc == 10)) || grep -qiE 'repository does not exist|unable to open config file|Is there a repository at' "$TMP_DIR/restic.err" 2>/dev/null; then
    die REPOSITORY_UNAVAILABLE "$EXIT_UNAVAILABLE" "The backup storage is not available right now."
  fi
  if ((rc == 12)) || grep -qi 'wrong password' "$TMP_DIR/restic.err" 2>/dev/null; then
    die REPOSITORY_UNAVAILABLE "$EXIT_UNAVAILABLE" "The backup storage could not be opened."
  fi
  if ((rc == 11)); then
    die REPOSITORY_LOCKED "$EXIT_LOCKED" "The backup storage is busy with maintenance; please try again later."
  fi
  if ((rc == 3)); then
    die "$code" "$EXIT_FAILED" "Some files of the site could not be read, so the backup was not completed."
  fi
  die "$code" "$EXIT_FAILED" "$message"
}

# restic_backup <kind:result|safety> <tags csv> <paths...>: backs up, emits the
# snapshot event built from the summary line (never --latest).
restic_backup() {
  local kind=$1 tags=$2 rc=0 raw="$TMP_DIR/backup.json" summary
  shift 2
  local -a excludes=()
  [[ -n ${BACKUP_EXCLUDE:-} ]] && excludes=(--exclude "$BACKUP_EXCLUDE")
  restic_stream "$raw" backup --json --tag "$tags" "${excludes[@]}" -- "$@" || rc=$?
  if ((rc != 0)); then restic_fail "$rc" BACKUP_FAILED "The backup could not be stored."; fi
  summary="$(jq -R -c 'fromjson? | select(type == "object" and .message_type == "summary")' "$raw" | tail -n 1)"
  if [[ -z $summary ]] || ! jq -e '.snapshot_id | test("^[0-9a-f]{64}$")' <<<"$summary" >/dev/null; then
    die BACKUP_FAILED "$EXIT_FAILED" "The backup finished without creating a snapshot."
  fi
  LAST_SNAPSHOT_ID="$(jq -r .snapshot_id <<<"$summary")"
  emit '{type: "snapshot", kind: $kind, id: $s.snapshot_id, short_id: $s.snapshot_id[0:8],
         time: $s.backup_start, paths: $ARGS.positional, tags: ($tags | split(",")),
         size: $s.total_bytes_processed}' \
    --arg kind "$kind" --arg tags "$tags" --argjson s "$summary" --args "$@"
}

# restic_restore <snapshot> <target> <path in the snapshot>...: restores those paths alone
# (each with what it holds), its progress streamed (restic_stream). --sparse: runs of zeros are written as holes, so a
# sparse file in a site (a 50 GiB disk image that holds a few MiB) takes on disk what it
# took before, not its apparent size; check_space counts on it.
restic_restore() {
  local rc=0 snapshot=$1 target=$2 path
  shift 2
  local -a includes=()
  for path in "$@"; do includes+=(--include "$(glob_escape "$path")"); done
  restic_stream "$TMP_DIR/restore.json" restore --json --sparse "$snapshot" --target "$target" "${includes[@]}" || rc=$?
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup could not be downloaded; the site was not changed."
  check_interrupted
}
# shellcheck disable=SC2001 # a character class, not a single substitution
glob_escape() { sed -e 's/[][*?\\]/\\&/g' <<<"$1"; }

# restic_forget <tags csv> <keep options...>: retention for one customer only
# (tags ANDed in one list, one group), emits the removed snapshot ids. No
# prune here: forget takes the exclusive lock briefly, pruning is weekly.
restic_forget() {
  local tags=$1 rc=0 out="$TMP_DIR/forget.json"
  shift
  restic_run "$out" forget --json --tag "$tags" --group-by '' "$@" || rc=$?
  if ((rc == 11)) && [[ ${RETENTION_MAY_DEFER:-0} == 1 ]]; then
    # The snapshot is safe; only the clean-up waits. Failing the job here would report a
    # good backup as failed because another job holds the repository.
    log "Retention deferred: the repository stayed locked"
    emit '{type: "retention", removed: [], deferred: true}'
    return 0
  fi
  if ((rc != 0)); then restic_fail "$rc" "$DEFAULT_ERR_CODE" "Old backups could not be removed."; fi
  emit '{type: "retention", removed: ([$f[0][]? | .remove // [] | .[].id])}' --slurpfile f "$out"
}

# apply_retention <manual|daily|safety> <customer>: the retention policy of one customer's
# snapshots of one kind (manual: newest BACKUPS_MANUAL_KEEP; daily: BACKUPS_DAILY_KEEP_DAYS
# days; safety: newest BACKUPS_SAFETY_KEEP). No other customer's snapshot is ever touched.
apply_retention() {
  local kind=$1 customer=$2
  case $kind in
    manual) restic_forget "customer-$customer,manual" --keep-last "$MANUAL_KEEP" ;;
    daily) restic_forget "customer-$customer,daily" --keep-within "${DAILY_KEEP_DAYS}d" ;;
    safety) restic_forget "customer-$customer,safety" --keep-last "$SAFETY_KEEP" ;;
  esac
}
