# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Disk space for a restore (customer-restore, CHECKING_SPACE): the staged copy, the dump and
# the undo point's dump must fit next to the sites (+10% + BACKUPS_SPACE_MARGIN_MB), by
# apparent size, or else by what restore --sparse writes.
#
# Reads: SCOPE, PARTIAL_FILES and PARTIAL_BYTES (partial.sh: the chosen paths' size) (unset: none, as in customer-verify), SNAP_LISTED, SNAP_CONTENT, SNAP_DUMP, SNAP_DUMP_SIZE, FULL_ID (verify_snapshot,
#   snapshot-layout.sh; $TMP_DIR/ls.json when SNAP_LISTED), LIVE_DB, SPACE_MARGIN_MB,
#   CUSTOMERS_ROOT, TMP_DIR.
# Sets: WRITTEN_BYTES (snapshot_written_bytes).

# listing_bytes <listing> <path prefix>: the bytes of its regular files below the prefix
# (in $(...): a failure stops the script through errexit, as the jq before it did).
listing_bytes() { "${BACKUPS_NODE_BIN:-node}" "$LIB_DIR/listing-bytes.mjs" "$1" "$2"; }

check_space() {
  local bytes=0 dump_bytes=0 need avail
  if ((SNAP_LISTED)); then
    # The whole snapshot is listed already: sum what will be restored.
    if wants_files "$SCOPE" && ((${PARTIAL_FILES:-0})); then
      bytes=${PARTIAL_BYTES:-0}
    elif wants_files "$SCOPE"; then
      bytes="$(listing_bytes "$TMP_DIR/ls.json" "$SNAP_CONTENT/")"
    fi
    if wants_db "$SCOPE"; then
      dump_bytes=$SNAP_DUMP_SIZE
      bytes=$((bytes + dump_bytes))
    fi
  else
    local -a targets=()
    wants_files "$SCOPE" && ((!${PARTIAL_FILES:-0})) && targets+=("$SNAP_CONTENT")
    wants_db "$SCOPE" && targets+=("$SNAP_DUMP")
    if ((${#targets[@]} > 0)); then
      snapshot_ls --recursive "$FULL_ID" "${targets[@]}"
      bytes="$(listing_bytes "$TMP_DIR/ls.json" "")"
      wants_db "$SCOPE" && dump_bytes="$(jq -n --arg d "$SNAP_DUMP" 'first(inputs | select(.path == $d) | .size) // 0' "$TMP_DIR/ls.json")"
    fi
    ((!${PARTIAL_FILES:-0})) || bytes=$((bytes + ${PARTIAL_BYTES:-0}))
  fi
  # The dump counts twice: the downloaded file and its rows in the scratch database;
  # the undo point's dump of the replaced database is written next to the site too.
  # (SPACE_NO_UNDO_POINT=1: a drill, which makes no undo point)
  local live_db_bytes=0
  if wants_db "$SCOPE" && ((!${SPACE_NO_UNDO_POINT:-0})); then
    live_db_bytes="$(db_query "SELECT COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$LIVE_DB'")"
  fi
  # SPACE_EXTRA_BYTES: what else the caller writes there (a drill's own database server).
  local margin=$((SPACE_MARGIN_MB * 1024 * 1024 + ${SPACE_EXTRA_BYTES:-0}))
  need=$(((bytes + dump_bytes + live_db_bytes) * 11 / 10 + margin))
  avail="$(df -B1 --output=avail -- "$CUSTOMERS_ROOT" | tail -n 1 | tr -d ' ')"
  log "Restore needs $need bytes by apparent size ($bytes restored), $avail available"
  ((avail < need)) || return 0
  # Apparent sizes count a sparse file's holes, which the restore (--sparse) does not
  # write: before refusing, the figure restic gives of what it will write.
  if snapshot_written_bytes; then
    need=$(((WRITTEN_BYTES + dump_bytes + live_db_bytes) * 11 / 10 + margin))
    log "Restore needs $need bytes by what it writes ($WRITTEN_BYTES in the snapshot's distinct blobs per file), $avail available"
    ((avail < need)) || return 0
  fi
  die INSUFFICIENT_SPACE "$EXIT_REFUSED" "There is not enough free disk space to restore this backup."
}

# fits_by_total <bytes of every file of the snapshot>: whether a drill (SPACE_NO_UNDO_POINT=1:
# no undo point's dump) of it fits beside the sites for sure, before its listing is read.
# check_space counts the content folder's files and the dump twice over (the downloaded
# file and its rows), each at most all of the snapshot's files, so three times those are
# never less than it counts (even for a dump the layout rule finds inside a content folder,
# which the restore writes twice). Status 1 when that bound does not fit, or there is no
# total (a snapshot without a summary): then check_space decides, on the listing.
fits_by_total() {
  local total=$1 need avail
  [[ $total =~ ^[0-9]{1,17}$ ]] && ((${SPACE_NO_UNDO_POINT:-0})) || return 1
  need=$((3 * total * 11 / 10 + SPACE_MARGIN_MB * 1024 * 1024 + ${SPACE_EXTRA_BYTES:-0}))
  avail="$(df -B1 --output=avail -- "$CUSTOMERS_ROOT" | tail -n 1 | tr -d ' ')"
  log "The drill needs at most $need bytes (three times the $total bytes of the snapshot's files), $avail available"
  ((avail >= need))
}

# snapshot_written_bytes: sets WRITTEN_BYTES to the sum of each file's distinct blobs in
# the whole snapshot (restic stats --mode blobs-per-file): a sparse file's zero chunks are
# one blob, counted once, about what restore --sparse writes. stats cannot be limited to a
# part of a snapshot (it ignores <id>:<path>), so only a snapshot tagged for this customer
# (it holds their site and dump alone) is counted; for a legacy daily snapshot, which holds
# every customer's, it returns 1 and the apparent size stands. Not called in $(...): a
# restic failure must reach the EXIT trap, and a signal the running restic.
snapshot_written_bytes() {
  local rc=0 out="$TMP_DIR/stats.json"
  WRITTEN_BYTES=""
  if ((!SNAP_LISTED)); then
    log "No second space figure: this snapshot holds other customers' sites too"
    return 1
  fi
  restic_run "$out" stats --json --mode blobs-per-file "$FULL_ID" || rc=$?
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup could not be read."
  check_interrupted
  # A snapshot id stats did not take (it only warns) counts no snapshot at all.
  WRITTEN_BYTES="$(jq -r 'select(.snapshots_count == 1) | .total_size | numbers' "$out")"
  if [[ ! $WRITTEN_BYTES =~ ^[0-9]+$ ]]; then
    log "No second space figure: restic stats counted no snapshot"
    return 1
  fi
}
