# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# The undo point of a restore (customer-restore): what the swap replaced (the live content
# folder, moved into $UNDO_DIR, and the replaced tables, in customer_N__previous, with the
# replaced views, triggers, routines and events) stored in the safety repository as one
# snapshot that a later restore reads like any other. prepare_undo_point runs as the "undo"
# branch before the swap; store_undo_point runs after it, and from --recover.
#
# Reads: SCOPE, CUSTOMER, LIVE_DB, PREVIOUS_DB, JOURNAL (journal.sh), JOURNAL_DIR, UNDO_DIR,
#   UNDO_DUMP, TMP_DIR, READ_REPOSITORY and READ_PASSWORD_FILE (customer-restore: the
#   repository the snapshot was read from).
# Sets: SAFETY_MADE (1 once an undo point was stored by this run: its retention is due),
#   LAST_SNAPSHOT_ID, BACKUP_EXCLUDE, PROGRESS_PHASE; the journal's STEP and UNDO.

# Branch "undo": a check that the safety repository opens (done already when it is the
# repository the snapshot was read from). The undo point itself is
# made after the swap from what the swap moved aside (the content folder, the tables
# in customer_N__previous): exactly what was replaced, and the site does not wait for it.
prepare_undo_point() {
  PROGRESS_PHASE=SAFETY_SNAPSHOT
  if wants_db "$SCOPE" && ! db_exists "$LIVE_DB"; then
    die DATABASE_DUMP_FAILED "$EXIT_FAILED" "The site's current database could not be saved before the restore."
  fi
  local rc=0
  resolve_repository safety "$CUSTOMER"
  # The repository the snapshot was just read from, with the same password file (the
  # default: undo points beside the manual backups): this run has opened it already.
  if [[ $RESTIC_REPOSITORY == "${READ_REPOSITORY:-}" && $RESTIC_PASSWORD_FILE == "${READ_PASSWORD_FILE:-}" ]]; then
    return 0
  fi
  restic_run "$TMP_DIR/config.json" cat config || rc=$?
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup storage for the undo point could not be opened."
  check_interrupted
}

# The undo point (housekeeping, after "completed"): the undo folder goes to the
# safety repository, tagged like the restore (customer, safety, scope, job). Done
# once (UNDO=stored in the journal); a failure leaves the folder for --recover.
store_undo_point() {
  [[ ${JOURNAL[UNDO]:-} == stored ]] && return 0
  journal_set STEP=undo_point
  is_scope "${JOURNAL[SCOPE]:-}" || die RESTORE_FAILED "$EXIT_FAILED" "The restore journal is damaged."
  if ! wants_db "${JOURNAL[SCOPE]}" && { [[ ! -d $UNDO_DIR ]] || [[ -z "$(ls -A -- "$UNDO_DIR")" ]]; }; then
    # Nothing was there to replace (no content folder, database scope not restored).
    journal_set UNDO=stored
    return 0
  fi
  emit_phase STORING_UNDO_POINT
  [[ ${JOURNAL[PARTIAL_FILES]:-0} != 1 ]] || fit_undo_folders
  if wants_db "${JOURNAL[SCOPE]}" && [[ ! -f $UNDO_DUMP ]]; then dump_replaced_database; fi
  local tags="customer-$CUSTOMER,safety,${JOURNAL[SCOPE]}"
  [[ ${JOURNAL[JOB]:-} =~ ^[1-9][0-9]{0,11}$ ]] && tags+=",job-${JOURNAL[JOB]}"
  # The undo point of a partial restore (its manifest says what it puts back).
  [[ -f $UNDO_DIR/$MANIFEST_NAME ]] && tags+=",partial"
  resolve_repository safety "$CUSTOMER"
  # An earlier attempt that was killed after its upload and before it wrote UNDO=stored
  # left the undo point in the repository: a second copy would take one of the kept undo
  # points. Only a job's tag tells its undo point apart from the customer's others.
  if [[ ${JOURNAL[UNDO]:-} == uploading && $tags == *,job-* ]] && find_stored_undo_point "$tags"; then
    journal_set UNDO=stored
    SAFETY_MADE=1
    return 0
  fi
  journal_set UNDO=uploading
  BACKUP_EXCLUDE=""
  PROGRESS_PHASE=""
  restic_backup safety "$tags" "$UNDO_DIR"
  journal_set UNDO=stored
  SAFETY_MADE=1
  check_interrupted
}

# find_stored_undo_point <tags csv>: true if the safety repository (resolved) holds a
# snapshot with all these tags; emits its snapshot event again (the first may have been
# lost with the killed script), so the worker records it.
find_stored_undo_point() {
  local tags=$1 rc=0 out="$TMP_DIR/undo-snapshots.json" found
  restic_run "$out" snapshots --json --tag "$tags" || rc=$?
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup storage for the undo point could not be read."
  found="$(jq -c 'sort_by(.time) | last // empty' "$out")"
  [[ -n $found ]] || return 1
  LAST_SNAPSHOT_ID="$(jq -r .id <<<"$found")"
  log "The undo point was stored before the interruption: $LAST_SNAPSHOT_ID"
  emit '{type: "snapshot", kind: "safety", id: $s.id, short_id: $s.id[0:8], time: $s.time,
         paths: ($s.paths // []), tags: ($s.tags // []), size: ($s.summary.total_bytes_processed // null)}' \
    --argjson s "$found"
}

# The database part of the undo point, after the swap: the replaced tables (in
# customer_N__previous, which nothing writes any more) and the definitions of the
# replaced views, triggers, routines and events (saved before the swap), as one dump
# that a restore reads like any other.
dump_replaced_database() {
  local tables="$UNDO_DUMP.tables" objects="$JOURNAL_DIR/live-objects.sql"
  local failed="The site's previous database could not be saved as its undo point."
  mkdir -p -- "$UNDO_DIR"
  [[ -f $objects ]] || die DATABASE_DUMP_FAILED "$EXIT_FAILED" "$failed"
  # It holds the replaced tables (none, if there were none) until the undo point is stored.
  db_exists "$PREVIOUS_DB" || die DATABASE_DUMP_FAILED "$EXIT_FAILED" "$failed"
  if ! dump_database "$PREVIOUS_DB" "$tables"; then
    check_interrupted
    die DATABASE_DUMP_FAILED "$EXIT_FAILED" "$failed"
  fi
  {
    grep -v -- '^-- Dump completed' "$tables"
    cat -- "$objects"
    printf -- '-- Dump completed (undo point of customer-restore)\n'
  } >"$UNDO_DUMP.tmp"
  rm -f -- "$tables"
  mv -- "$UNDO_DUMP.tmp" "$UNDO_DUMP"
}
