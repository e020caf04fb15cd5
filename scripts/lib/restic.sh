# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# restic wrappers. Every call: --retry-lock, password from a file, fixed cache.

# With --json restic prints ~50 status lines a second; each crosses tee, jq and the worker.
# Four a second are as many as the worker writes (measured: a 531 MB backup 7-21% faster).
export RESTIC_PROGRESS_FPS=${RESTIC_PROGRESS_FPS:-4}

# resolve_repository <manual|daily|safety> [customer]: the ONE place deciding
# which repository, password file and mode serve a customer. A "{customer}" in either
# value shards repositories per customer. A location is a local path, sftp:[user@]host:/path
# (ssh's own config, or BACKUPS_SSH_CONFIG: host key checked, never accepted blindly) or
# rest:https://host:port/path (RESTIC_REST_USERNAME/_PASSWORD, RESTIC_CACERT), s3:...
# The mode, beside the location (BACKUPS_<KIND>_REPOSITORY_MODE): "full", or "append-only"
# when this node's credentials can only add (rest-server --append-only): then this node never
# forgets or prunes; the maintainer (main/maintainer.ts) does, with the full-rights ones.
# Sets RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, REPOSITORY_MODE and RESTIC_GLOBAL_ARGS (every
# restic call's: the sftp ssh config, the bandwidth limits).
resolve_repository() {
  local kind=$1 customer=${2:-} repo pass mode
  case $kind in
    manual)
      repo=${BACKUPS_MANUAL_REPOSITORY:-$DATA_DIR/repos/manual}
      pass=${BACKUPS_MANUAL_PASSWORD_FILE:-$DATA_DIR/secrets/manual-repository.pass}
      mode=${BACKUPS_MANUAL_REPOSITORY_MODE:-full}
      ;;
    daily)
      repo=${BACKUPS_DAILY_REPOSITORY:-$DATA_DIR/repos/daily}
      pass=${BACKUPS_DAILY_PASSWORD_FILE:-$DATA_DIR/secrets/daily-repository.pass}
      mode=${BACKUPS_DAILY_REPOSITORY_MODE:-full}
      ;;
    safety)
      repo=${BACKUPS_SAFETY_REPOSITORY:-${BACKUPS_MANUAL_REPOSITORY:-$DATA_DIR/repos/manual}}
      pass=${BACKUPS_SAFETY_PASSWORD_FILE:-${BACKUPS_MANUAL_PASSWORD_FILE:-$DATA_DIR/secrets/manual-repository.pass}}
      mode=${BACKUPS_SAFETY_REPOSITORY_MODE:-${BACKUPS_MANUAL_REPOSITORY_MODE:-full}}
      ;;
    *) die INVALID_ARGUMENT "$EXIT_INVALID" "Unknown repository kind." ;;
  esac
  case $mode in full | append-only) ;; *) die INVALID_ARGUMENT "$EXIT_INVALID" "A repository mode must be full or append-only." ;; esac
  if [[ ($repo == *"{customer}"* || $pass == *"{customer}"*) && -z $customer ]]; then
    die INVALID_ARGUMENT "$EXIT_INVALID" "This installation keeps one repository per customer: --customer is required."
  fi
  RESTIC_REPOSITORY=${repo//\{customer\}/$customer}
  RESTIC_PASSWORD_FILE=${pass//\{customer\}/$customer}
  REPOSITORY_MODE=$mode
  RESTIC_GLOBAL_ARGS=()
  if [[ $RESTIC_REPOSITORY == sftp:* && -n ${BACKUPS_SSH_CONFIG:-} ]]; then
    [[ $BACKUPS_SSH_CONFIG =~ ^/[A-Za-z0-9._/-]+$ ]] || die INVALID_ARGUMENT "$EXIT_INVALID" "BACKUPS_SSH_CONFIG must be an absolute path."
    RESTIC_GLOBAL_ARGS+=(-o "sftp.args=-F $BACKUPS_SSH_CONFIG -o BatchMode=yes")
  fi
  local up=${BACKUPS_RESTIC_LIMIT_UPLOAD:-0} down=${BACKUPS_RESTIC_LIMIT_DOWNLOAD:-0}
  [[ $up =~ ^(0|[1-9][0-9]{0,9})$ && $down =~ ^(0|[1-9][0-9]{0,9})$ ]] ||
    die INVALID_ARGUMENT "$EXIT_INVALID" "BACKUPS_RESTIC_LIMIT_UPLOAD and _DOWNLOAD must be numbers of KiB/s (0: no limit)."
  ((up == 0)) || RESTIC_GLOBAL_ARGS+=(--limit-upload "$up")
  ((down == 0)) || RESTIC_GLOBAL_ARGS+=(--limit-download "$down")
  export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
}

# A repository that stops answering is retried by restic for up to 15 minutes per request;
# a job would hang that long. When every request has failed for BACKUPS_REPOSITORY_STALL_SECONDS
# (default 60), restic is stopped and the step fails with REPOSITORY_UNAVAILABLE.
STALLED=0
on_stall() {
  if ((STALLED)); then
    # restic stayed to remove its lock from a server that is gone: it cannot.
    [[ -n $CHILD_PID ]] && kill -KILL "$CHILD_PID" 2>/dev/null
    return 0
  fi
  STALLED=1
  log "The repository stopped answering: stopping restic"
  [[ -n $CHILD_PID ]] && kill -TERM "$CHILD_PID" 2>/dev/null
  return 0
}
# restic_unlock_stale: removes the locks of restic processes that are gone (restic unlock
# removes only stale ones: a dead process of this host, or a lock not refreshed for 30
# minutes). restic never ignores a stale lock by itself: a restic that was killed (SIGKILL,
# OOM, its script or worker killed) leaves its lock, and every forget or prune after it would
# wait --retry-lock and fail with the repository "locked". Best effort, bounded.
restic_unlock_stale() {
  local out
  out=$(timeout 60 "$RESTIC_BIN" "${RESTIC_GLOBAL_ARGS[@]}" unlock 2>&1) || return 0
  [[ $out == *"successfully removed"* && $out != *"removed 0 locks"* ]] &&
    log "Stale restic locks removed: ${out##*successfully }"
  return 0
}

# restic_watchdog <restic stderr file> <pid>: background; USR1 to that shell (the script, or
# the branch running restic) once restic has only been retrying for the stall limit, again
# 10 s later if restic is still there. restic says when it retries next ("retrying after
# 4.6s"): a retry that no further failure follows by then has worked, and the count restarts.
restic_watchdog() {
  local err=$1 shell=$2 limit=${BACKUPS_REPOSITORY_STALL_SECONDS:-60} seen=0 first=0 quiet_until=0
  local n now delay signalled=0
  [[ $limit =~ ^[1-9][0-9]{0,5}$ ]] || limit=60
  while sleep 1; do
    # the script that started it is gone (killed): nothing left to watch
    kill -0 "$shell" 2>/dev/null || return 0
    n=$(grep -c 'returned error, retrying after' "$err" 2>/dev/null) || n=0
    now=$(date +%s)
    if ((n > seen)); then
      ((first == 0)) && first=$now
      # the longest wait restic announced in the new lines, in whole seconds (rounded up)
      delay=$(grep 'returned error, retrying after' "$err" | tail -n "$((n - seen))" |
        sed -E 's/.*retrying after ([0-9hms.]+).*/\1/' | awk '
          { t = 0; s = $0
            if (match(s, /[0-9.]+h/)) { t += substr(s, RSTART, RLENGTH - 1) * 3600 }
            if (match(s, /[0-9.]+m[^s]/) || match(s, /[0-9.]+m$/)) { v = substr(s, RSTART); sub(/m.*/, "", v); t += v * 60 }
            if (match(s, /[0-9.]+ms/)) { t += substr(s, RSTART, RLENGTH - 2) / 1000 }
            else if (match(s, /[0-9.]+s/)) { t += substr(s, RSTART, RLENGTH - 1) }
            if (t > m) m = t }
          END { printf "%d", m + 1 }')
      ((now + delay + 5 > quiet_until)) && quiet_until=$((now + delay + 5))
      seen=$n
    elif ((first > 0 && signalled == 0 && now > quiet_until)); then
      first=0 # the last retry worked
    fi
    if ((first > 0 && signalled == 0 && now - first >= limit)); then
      kill -USR1 "$shell" 2>/dev/null || return 0
      signalled=$now
    elif ((signalled > 0 && now - signalled >= 10)); then
      kill -USR1 "$shell" 2>/dev/null || return 0
      signalled=$now
    fi
  done
}

# restic_child <stdout> <args...>: restic with the repository's global arguments, watched.
restic_child() {
  # this shell's pid, taken here: in the background command's arguments it would be the child's
  local out=$1 rc=0 watchdog me=$BASHPID
  shift
  : >"$TMP_DIR/restic.err"
  trap on_stall USR1
  # Without the script's lock descriptors (8: scratch folder, 9: the customer): a watchdog left
  # by a killed script must not keep the customer locked.
  restic_watchdog "$TMP_DIR/restic.err" "$me" 3>&- 8>&- 9>&- &
  watchdog=$!
  run_child "$RESTIC_BIN" "${RESTIC_GLOBAL_ARGS[@]}" --retry-lock "${LOCK_WAIT:-$RETRY_LOCK}" "$@" >"$out" 2>"$TMP_DIR/restic.err" || rc=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  # restic killed by a signal (not stopped by us for a repository that stopped answering)
  # could not remove its lock: removed now, before the next forget or prune has to wait for it.
  if ((rc > 128 && STALLED == 0)); then restic_unlock_stale; fi
  return "$rc"
}

# restic_run <stdout file> <args...>: stderr goes to $TMP_DIR/restic.err and
# is copied to our stderr (human log). forget and prune need the repository alone: they
# first wait 2 s for its lock; if it stays locked (exit 11), the locks of dead
# restic processes are removed and the full --retry-lock is waited. A lock left by a killed
# restic so costs seconds, not a failed wait of BACKUPS_RESTIC_RETRY_LOCK.
restic_run() {
  local out=$1 rc=0
  shift
  if [[ $1 == forget || $1 == prune ]]; then
    LOCK_WAIT=2s restic_child "$out" "$@" || rc=$?
    if ((rc == 11)); then
      restic_unlock_stale
      rc=0
      restic_child "$out" "$@" || rc=$?
    fi
  else
    restic_child "$out" "$@" || rc=$?
  fi
  cat "$TMP_DIR/restic.err" >&2
  emit_restic_exit "$1" "$rc"
  return "$rc"
}

# emit_restic_exit <command> <status>: how a restic run ended, for the worker's metrics
# (exit codes 3, 10, 11, 12 tell unreadable files, a missing repository, a lock, a password).
emit_restic_exit() {
  if [[ $1 =~ ^[a-z-]{1,20}$ && $2 =~ ^(0|[1-9][0-9]{0,2})$ ]]; then
    # A restic command and a status: printed as is, without starting a jq.
    printf '{"type":"restic","command":"%s","code":%s}\n' "$1" "$2" >&3 || true
  else
    emit '{type:"restic",command:$c,code:($rc|tonumber)}' --arg c "$1" --arg rc "$2" || true
  fi
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
  restic_child "$fifo" "$@" || rc=$?
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

# What ssh says when it refuses a host whose key is not the one on record (changed, or none).
HOST_KEY_REFUSED='Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No [A-Z0-9-]+ host key is known|Host key for .* has changed'
HOST_KEY_MESSAGE="The backup storage could not prove it is the real one: its identity (SSH host key) does not match the one on record, so nothing was sent to it and your site was not changed. The hosting team has to check the backup host."

# sftp_host_key_refused: whether ssh itself refuses the sftp repository's host for its key.
# restic passes ssh's own words on only when they come before it gives up on the session, and
# about one run in five they come too late ("unable to start the sftp session" alone), so a
# session that could not start is asked again of ssh, which writes its words before it ends.
# Same host, user, port and config as restic's ssh; BatchMode: never asks, never accepts a key.
sftp_host_key_refused() {
  [[ $RESTIC_REPOSITORY == sftp:* ]] || return 1
  grep -qiE 'unable to start the sftp session|ssh command exited' "$TMP_DIR/restic.err" 2>/dev/null || return 1
  local target=${RESTIC_REPOSITORY#sftp:} host user="" port=""
  if [[ $target == //* ]]; then
    # sftp://[user@]host[:port]//path
    target=${target#//}
    target=${target%%/*}
    if [[ $target == *@* ]]; then user=${target%%@*} target=${target#*@}; fi
    if [[ $target =~ ^(.*):([0-9]+)$ ]]; then target=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}; fi
    host=${target#[}
    host=${host%]}
  else
    # sftp:[user@]host:/path
    host=${target%%:*}
    if [[ $host == *@* ]]; then user=${host%%@*} host=${host#*@}; fi
  fi
  [[ -n $host ]] || return 1
  local -a args=(-o BatchMode=yes -o ConnectTimeout=15)
  [[ -z ${BACKUPS_SSH_CONFIG:-} ]] || args+=(-F "$BACKUPS_SSH_CONFIG")
  [[ -z $port ]] || args+=(-p "$port")
  [[ -z $user ]] || args+=(-l "$user")
  # no input: once in, the sftp server sees its end at once and stops
  run_child timeout 30 ssh "${args[@]}" -s -- "$host" sftp </dev/null >/dev/null 2>"$TMP_DIR/ssh-probe.err" || true
  cat -- "$TMP_DIR/ssh-probe.err" >&2
  grep -qiE "$HOST_KEY_REFUSED" "$TMP_DIR/ssh-probe.err"
}

# restic_fail <status> <default code> <message>: map restic's exit status to
# an error event and our exit status. Never returns.
restic_fail() {
  local rc=$1 code=$2 message=$3
  check_interrupted
  if ((STALLED)); then
    die REPOSITORY_UNAVAILABLE "$EXIT_UNAVAILABLE" "The backup storage stopped answering, so this was stopped; nothing was changed. It will work again once the storage is back."
  fi
  if grep -qiE "$HOST_KEY_REFUSED" "$TMP_DIR/restic.err" 2>/dev/null || sftp_host_key_refused; then
    die REPOSITORY_UNAVAILABLE "$EXIT_UNAVAILABLE" "$HOST_KEY_MESSAGE"
  fi
  if grep -qiE 'x509: certificate|tls: failed to verify' "$TMP_DIR/restic.err" 2>/dev/null; then
    die REPOSITORY_UNAVAILABLE "$EXIT_UNAVAILABLE" "The backup storage did not prove its identity (its TLS certificate is not trusted), so nothing was sent to it. An operator must check the backup host."
  fi
  if ((rc == 10)) || grep -qiE 'repository does not exist|unable to open config file|Is there a repository at|connection refused|connection reset|no such host|ssh command exited|connection lost|unable to open repository|unable to start the sftp session|Connection timed out' "$TMP_DIR/restic.err" 2>/dev/null; then
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
    # restic ended well, so it has most likely stored the snapshot; its answer was lost here
    # (the copy of its output could not be written: this disk full, say). The worker compares
    # the catalog with the repository after a failed backup, so a stored one gets listed.
    die BACKUP_FAILED "$EXIT_FAILED" "The backup could not be confirmed: this server could not read the backup storage's answer (it may be short of disk space). If the backup was stored, it appears in the list within a minute."
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
  if [[ $REPOSITORY_MODE == append-only ]]; then
    # This node cannot delete; its customers' retention is the maintainer's.
    log "Retention left to the maintainer: the $kind repository is append-only for this node"
    emit '{type: "retention", removed: [], appendOnly: true}'
    return 0
  fi
  case $kind in
    manual) restic_forget "customer-$customer,manual" --keep-last "$MANUAL_KEEP" ;;
    daily) restic_forget "customer-$customer,daily" --keep-within "${DAILY_KEEP_DAYS}d" ;;
    safety) restic_forget "customer-$customer,safety" --keep-last "$SAFETY_KEEP" ;;
  esac
}

# apply_retention_all <manual|daily|safety>: the retention of every customer in a shared
# repository, the maintainer's: one listing, apply_retention's policy worked out for all of
# them at once (lib/retention.jq, which says why restic cannot group so itself), and one
# `restic forget <ids>` per BACKUPS_RETENTION_BATCH snapshots (default 1000): the exclusive
# lock is taken once per batch, not once per customer. After each forget call, one
# {"type":"retention","customer":N,"removed":[...]} per customer it removed snapshots of.
# Removing chosen ids is safe against snapshots added meanwhile: a newer snapshot only ever
# lets more of the older ones go.
apply_retention_all() {
  local kind=$1 last=0 days=0 rc=0 batch=${BACKUPS_RETENTION_BATCH:-1000} plan removed=0 calls=0
  local -a ids
  [[ $batch =~ ^[1-9][0-9]{0,5}$ ]] || die INVALID_ARGUMENT "$EXIT_INVALID" "BACKUPS_RETENTION_BATCH must be a number of snapshots (1 to 999999)."
  case $kind in
    manual) last=$((10#$MANUAL_KEEP)) ;;
    safety) last=$((10#$SAFETY_KEEP)) ;;
    daily) days=$((10#$DAILY_KEEP_DAYS)) ;;
  esac
  if ((last == 0 && days == 0)); then
    # restic refuses a forget without a policy too ("no policy was specified")
    log "No retention policy for $kind (its keep setting is 0): nothing removed"
    die "$DEFAULT_ERR_CODE" "$EXIT_FAILED" "Old backups could not be removed."
  fi
  restic_run "$TMP_DIR/all.json" snapshots --json --tag "$kind" || rc=$?
  ((rc == 0)) || restic_fail "$rc" "$DEFAULT_ERR_CODE" "The backups could not be listed."
  plan="$TMP_DIR/retention-plan.json"
  jq -c -f "$LIB_DIR/retention.jq" --arg kind "$kind" --argjson last "$last" --argjson days "$days" \
    --argjson chunk "$batch" "$TMP_DIR/all.json" >"$plan" ||
    die "$DEFAULT_ERR_CODE" "$EXIT_FAILED" "The backup list could not be read."
  while IFS= read -r line; do
    mapfile -t ids < <(jq -r '.[].remove[]' <<<"$line")
    rc=0
    # ids that are gone already (another pass) are ignored by restic
    restic_run "$TMP_DIR/forget.out" forget "${ids[@]}" || rc=$?
    ((rc == 0)) || restic_fail "$rc" "$DEFAULT_ERR_CODE" "Old backups could not be removed."
    jq -c '.[] | {type: "retention", customer, removed: .remove}' <<<"$line" >&3
    removed=$((removed + ${#ids[@]})) calls=$((calls + 1))
  done <"$plan"
  log "Retention of every customer's $kind snapshots: $removed removed in $calls forget call(s)"
}
