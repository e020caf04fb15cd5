# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Restoring part of a snapshot (customer-restore --paths-from / --tables-from, or the undo
# point of such a restore): the chosen paths of the content folder and the chosen tables,
# through the same pipeline as a full restore, switched in with the same single swap.
#
# Paths. Relative to the content folder, validated (validate_rel_path) and deduplicated: a
# path inside another chosen path is dropped (its ancestor is restored whole). At the swap,
# with the site stopped, each chosen path becomes a "unit", the part of the live tree that is
# replaced as one rename: the path itself when its live parent folders all exist, else its
# first missing ancestor (the staged copy of that ancestor holds only what was chosen, with
# the snapshot's modes and times). A live parent that is a symlink or a file is refused:
# renaming into it would write wherever it points. Each unit is moved aside into the undo
# folder (when it exists live) and its staged copy moved in; the parents' times are put back.
#
# Tables. The whole dump goes into the scratch database as in a full restore; the chosen
# tables (each in the dump's CREATE TABLE lines) alone are renamed into place in one RENAME
# TABLE, each live one moved into customer_N__previous. Triggers follow their table: the live
# triggers of a chosen table are dropped (and kept for the undo point), the backup's are
# created. Views, routines and events are the live ones, untouched: a view names tables, so
# it reads the restored ones. Foreign keys may not link a chosen table with one that is not.
#
# The undo point holds what the swap moved aside (units in customer-N/<content>/, tables in
# the dump) and partial-restore.manifest, NUL-separated records: "partial-restore 1", then
# "files" with "R:<unit>" (replaced: in the undo point) and "C:<unit>" (created: removed by
# an undo), and/or "tables" with "T:<table>" (replaced) and "N:<table>" (created). A restore
# of a safety snapshot holding one, without --paths-from/--tables-from, restores exactly
# that: R and T put back, C and N removed.
#
# Journal files (in $JOURNAL_DIR, written before the step that needs them):
#   chosen.paths   NUL-separated records "R:<path>" (from the snapshot) or "D:<path>" (removed)
#   chosen.tables  lines "R:<table>" / "D:<table>"
#   units          NUL-separated "R1:<unit>" (replaced), "R0:<unit>" (created), "D1:<unit>"
#                  (removed); written at the swap, before the first rename
#   parent-times   NUL-separated "<mtime>:<folder>" of the units' live parents
#   tables.plan    lines "O:<table>" (moved out of the live database), "I:<table>" (moved in)
#   staged/        the staged content folder
#
# Reads: CUSTOMER, SCOPE, KIND, FULL_ID, SNAP_JSON, SNAP_CONTENT, SNAP_LISTED, SITE, LIVE_DB,
#   SCRATCH_DB, PREVIOUS_DB, JOURNAL, JOURNAL_DIR, UNDO_DIR, DISCARD_DIR, STAGING, TMP_DIR,
#   SNAPSHOT, JOB, CUSTOMERS_ROOT, SPACE_MARGIN_MB, BRANCH_PIDS.
# Sets: PATHS_FROM, TABLES_FROM, PARTIAL_FILES, PARTIAL_TABLES, CHOSEN_PATHS (records as in
#   chosen.paths), CHOSEN_TABLES (records as in chosen.tables), PARTIAL_BYTES, EARLY_ACTIVE
#   EARLY_CONTENT and EARLY_KEYS (the early download), the journal (start_early_download).

PATHS_FROM="" TABLES_FROM=""
PARTIAL_FILES=0 PARTIAL_TABLES=0 PARTIAL_BYTES=0
CHOSEN_PATHS=() CHOSEN_TABLES=()
readonly MAX_CHOSEN=1000 MAX_PATH_BYTES=4096 MANIFEST_NAME=partial-restore.manifest

# --- arguments ----------------------------------------------------------------
# A path as a customer names it; the message quotes at most 200 bytes of it.
shown() { local LC_ALL=C; printf '%s' "${1:0:200}"; }

is_utf8() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; }

# rel_path_problem <path>: what is wrong with a chosen path (nothing: it is relative,
# normalised, 1..4096 bytes of UTF-8 without a newline).
rel_path_problem() {
  local p=$1 LC_ALL=C
  if ((${#p} < 1 || ${#p} > MAX_PATH_BYTES)); then echo "A path to restore must be 1 to $MAX_PATH_BYTES bytes long."; return; fi
  if [[ $p == *$'\n'* ]]; then echo "A path to restore must not contain a line break."; return; fi
  if [[ $p == /* ]]; then echo "Paths to restore are relative to the site's folder, not absolute."; return; fi
  if [[ /$p/ == */../* ]]; then echo "A path to restore must not contain \"..\"."; return; fi
  if [[ /$p/ == *//* || /$p/ == */./* ]]; then echo "A path to restore must be normalised (no empty or \".\" parts, no trailing slash)."; return; fi
  if ! is_utf8 "$p"; then echo "A path to restore must be valid UTF-8 text."; return; fi
}
validate_rel_path() {
  local problem
  problem="$(rel_path_problem "$1")"
  [[ -z $problem ]] || invalid "$problem"
}

# The table names accepted: 1..64 characters of UTF-8 text without control characters,
# quotes, backticks or backslashes, not ending in a space (names MariaDB takes and that
# embed in SQL quoted as they are).
table_name_problem() {
  local name=$1
  if ((${#name} < 1 || ${#name} > 64)); then echo "A table name must be 1 to 64 characters long."; return; fi
  if ! is_utf8 "$name"; then echo "A table name must be valid UTF-8 text."; return; fi
  if [[ $name =~ [[:cntrl:]] || $name == *[\`\'\"\\]* || $name == *' ' ]]; then
    echo "A table name must not contain control characters, quotes, backticks or backslashes, nor end with a space."
    return
  fi
}

# An argument file: a regular file of at most <max> bytes.
check_arg_file() {
  local file=$1 max=$2 what=$3 size
  [[ -f $file && -r $file ]] || invalid "The file of $what to restore cannot be read."
  size="$(stat -L -c %s -- "$file")"
  ((size <= max)) || invalid "Too many $what: at most $MAX_CHOSEN."
}

# read_paths_from <file>: NUL-separated paths into CHOSEN_PATHS ("R:<path>"), deduplicated.
read_paths_from() {
  local file=$1 p
  local -a raw=()
  check_arg_file "$file" $((MAX_CHOSEN * (MAX_PATH_BYTES + 1))) paths
  mapfile -d '' -t raw <"$file"
  ((${#raw[@]} >= 1 && ${#raw[@]} <= MAX_CHOSEN)) || invalid "Give 1 to $MAX_CHOSEN paths to restore."
  for p in "${raw[@]}"; do validate_rel_path "$p"; done
  dedupe_paths R "${raw[@]}"
}

# dedupe_paths <R|D> <path...>: CHOSEN_PATHS, sorted, without duplicates and without paths
# inside another one (a folder chosen is restored whole, with everything in it).
dedupe_paths() {
  local action=$1 p prefix inside
  shift
  local -A kept=()
  local -a sorted=()
  CHOSEN_PATHS=()
  # Byte order puts every folder before what is inside it.
  (($# > 0)) || return 0
  mapfile -d '' -t sorted < <(printf '%s\0' "$@" | LC_ALL=C sort -z -u)
  for p in "${sorted[@]}"; do
    inside=""
    prefix=$p
    while [[ $prefix == */* ]]; do
      prefix=${prefix%/*}
      if [[ -n ${kept[$prefix]:-} ]]; then inside=$prefix; break; fi
    done
    if [[ -n $inside ]]; then
      log "Path $(shown "$p") is inside $(shown "$inside"), which is restored whole"
      continue
    fi
    kept[$p]=1
    CHOSEN_PATHS+=("$action:$p")
  done
}

# read_tables_from <file>: one table name a line into CHOSEN_TABLES ("R:<table>").
read_tables_from() {
  local file=$1 name problem size
  local -a raw=()
  check_arg_file "$file" $((MAX_CHOSEN * 257)) tables
  size="$(stat -L -c %s -- "$file")"
  [[ "$(tr -d '\000' <"$file" | wc -c)" == "$size" ]] || invalid "A table name must not contain a NUL byte."
  mapfile -t raw <"$file"
  ((${#raw[@]} >= 1 && ${#raw[@]} <= MAX_CHOSEN)) || invalid "Give 1 to $MAX_CHOSEN tables to restore."
  CHOSEN_TABLES=()
  local -A seen=()
  for name in "${raw[@]}"; do
    problem="$(table_name_problem "$name")"
    [[ -z $problem ]] || invalid "$problem"
    [[ -z ${seen[$name]:-} ]] || continue
    seen[$name]=1
    CHOSEN_TABLES+=("R:$name")
  done
}

# After the scope is known: which side is partial, and the options that fit it.
partial_args() {
  if [[ -n $PATHS_FROM ]]; then
    wants_files "$SCOPE" || invalid "--paths-from needs the scope files or both."
    read_paths_from "$PATHS_FROM"
    PARTIAL_FILES=1
  fi
  if [[ -n $TABLES_FROM ]]; then
    wants_db "$SCOPE" || invalid "--tables-from needs the scope db or both."
    read_tables_from "$TABLES_FROM"
    PARTIAL_TABLES=1
  fi
}

# --- the undo point's manifest ----------------------------------------------
# A safety snapshot (only this script writes them) may hold a manifest at its top: then a
# restore of it without --paths-from/--tables-from is the partial restore it describes.
read_manifest() {
  # shellcheck disable=SC2153 # set by customer-restore's parse_args
  [[ $KIND == safety ]] || return 0
  local root node rc=0 record problem
  local -a records=() paths=() removed=() tables=()
  root="$(jq -r '.paths[0] // ""' <<<"$SNAP_JSON")"
  [[ -n $root ]] || return 0
  node="$(jq -n -r --arg p "$root/$MANIFEST_NAME" 'first(inputs | select(.struct_type == "node" and .type == "file" and .path == $p) | .path) // empty' "$TMP_DIR/ls.json")"
  [[ -n $node ]] || return 0
  restic_run "$TMP_DIR/manifest" dump "$FULL_ID" "$node" || rc=$?
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup could not be read."
  mapfile -d '' -t records <"$TMP_DIR/manifest"
  [[ ${records[0]:-} == "partial-restore 1" ]] || die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged."
  local side="" has_files=0 has_tables=0
  for record in "${records[@]:1}"; do
    case $record in
      files) side=files has_files=1 ;;
      tables) side=tables has_tables=1 ;;
      R:* | C:*)
        [[ $side == files ]] || die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged."
        problem="$(rel_path_problem "${record:2}")"
        [[ -z $problem ]] || die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged."
        if [[ $record == R:* ]]; then paths+=("${record:2}"); else removed+=("${record:2}"); fi
        ;;
      T:* | N:*)
        [[ $side == tables ]] || die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged."
        problem="$(table_name_problem "${record:2}")"
        [[ -z $problem ]] || die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged."
        if [[ $record == T:* ]]; then tables+=("R:${record:2}"); else tables+=("D:${record:2}"); fi
        ;;
      *) die RESTORE_FAILED "$EXIT_FAILED" "This undo point is damaged." ;;
    esac
  done
  # The caller's choice, where given, wins for its side.
  if wants_files "$SCOPE" && ((!PARTIAL_FILES && has_files)); then
    log "The undo point of a partial restore: its paths alone are put back"
    local -a both=()
    dedupe_paths R "${paths[@]}"
    both=("${CHOSEN_PATHS[@]}")
    dedupe_paths D "${removed[@]}"
    CHOSEN_PATHS=("${both[@]}" "${CHOSEN_PATHS[@]}")
    PARTIAL_FILES=1
  fi
  if wants_db "$SCOPE" && ((!PARTIAL_TABLES && has_tables)); then
    log "The undo point of a partial restore: its tables alone are put back"
    CHOSEN_TABLES=("${tables[@]}")
    PARTIAL_TABLES=1
  fi
}

# Written at the swap, once both plans are known, into the undo folder.
write_manifest() {
  local file="$UNDO_DIR/$MANIFEST_NAME" record
  {
    printf '%s\0' "partial-restore 1"
    if [[ ${JOURNAL[PARTIAL_FILES]:-0} == 1 ]]; then
      printf '%s\0' files
      while IFS= read -r -d '' record; do
        case $record in
          R1:* | D1:*) printf 'R:%s\0' "${record:3}" ;;
          R0:*) printf 'C:%s\0' "${record:3}" ;;
        esac
      done <"$JOURNAL_DIR/units"
    fi
    if [[ ${JOURNAL[PARTIAL_TABLES]:-0} == 1 ]]; then
      printf '%s\0' tables
      local -A out=()
      while IFS= read -r record; do [[ $record == O:* ]] && out[${record:2}]=1; done <"$JOURNAL_DIR/tables.plan"
      while IFS= read -r record; do
        if [[ $record == O:* ]]; then printf 'T:%s\0' "${record:2}"; fi
        if [[ $record == I:* && -z ${out[${record:2}]:-} ]]; then printf 'N:%s\0' "${record:2}"; fi
      done <"$JOURNAL_DIR/tables.plan"
    fi
  } >"$file.tmp"
  mv -- "$file.tmp" "$file"
}

# --- checks before anything changes -------------------------------------------
# Every chosen path of the snapshot is in the customer's content folder of it; PARTIAL_BYTES
# is the size of their files. A legacy daily snapshot is listed in the customer's content
# folder alone.
check_chosen_paths() {
  local listing=$TMP_DIR/ls.json record
  local -a found=()
  if ((!SNAP_LISTED)); then
    listing=$TMP_DIR/content.json
    restic_run "$listing" ls --json --recursive "$FULL_ID" "$SNAP_CONTENT" || {
      local rc=$?
      restic_fail "$rc" RESTORE_FAILED "The backup could not be read."
    }
  fi
  for record in "${CHOSEN_PATHS[@]}"; do
    [[ $record == R:* ]] && printf '%s\0' "${record:2}"
  done >"$TMP_DIR/chosen-in-snapshot"
  # jq reads only the lines of the chosen paths and what is below them (grep by their keys,
  # snapshot-layout.sh path_keys): parsing every line of a large snapshot took seconds. Should
  # a path be missing from them (restic encoding a name otherwise than the key), the whole
  # listing is read before the path is refused.
  local -a chosen_abs=()
  for record in "${CHOSEN_PATHS[@]}"; do
    [[ $record == R:* ]] && chosen_abs+=("$SNAP_CONTENT/${record:2}")
  done
  if ((${#chosen_abs[@]} > 0)); then
    local keys=$TMP_DIR/chosen-keys
    # The early download made them for its guess of the content folder, if it was right.
    if [[ -n $EARLY_CONTENT && $SNAP_CONTENT == "$EARLY_CONTENT" && -f $EARLY_KEYS ]]; then
      keys=$EARLY_KEYS
    else
      printf '%s\0' "${chosen_abs[@]}" | path_keys >"$keys"
    fi
    grep -F -f "$keys" -- "$listing" >"$TMP_DIR/chosen.json" || (($? == 1))
  else
    : >"$TMP_DIR/chosen.json"
  fi
  chosen_in "$TMP_DIR/chosen.json"
  if ((found[1] > 0)); then chosen_in "$listing"; fi
  if ((found[1] > 0)); then
    die PATH_NOT_FOUND "$EXIT_REFUSED" "This backup does not contain $(shown "${found[2]}") in the site's files; nothing was changed."
  fi
  PARTIAL_BYTES=${found[0]}
}

# chosen_in <listing>: sets the caller's found (the chosen files' bytes, how many chosen paths
# are missing, the first of them).
chosen_in() {
  jq -n -j --arg c "$SNAP_CONTENT/" --rawfile chosen "$TMP_DIR/chosen-in-snapshot" '
    ($chosen | split("\u0000") | map(select(. != ""))) as $want
    | ($want | map({key: ., value: true}) | from_entries) as $set
    | reduce (inputs | select(.struct_type == "node" and (.path | startswith($c)))) as $n
        ({found: {}, bytes: 0};
         ($n.path | ltrimstr($c)) as $rel
         | if $set[$rel] then .found[$rel] = true else . end
         | if $n.type == "file" then
             ($rel | split("/")) as $parts
             | if any(range(1; ($parts | length) + 1); $set[$parts[0:.] | join("/")]) then .bytes += ($n.size // 0) else . end
           else . end)
    | . as $r | [$want[] | select($r.found[.] | not)] as $missing
    | "\($r.bytes)\u0000\($missing | length)\u0000\($missing[0] // "")\u0000"' "$1" >"$TMP_DIR/chosen-found"
  mapfile -d '' -t found <"$TMP_DIR/chosen-found"
}

# live_unit <path>: the unit of a chosen path on the live site (LIVE_ROOT), as
# "<existed>:<unit>", or die if a live parent is not a folder. "-" for a removed path
# whose parent is missing (nothing to remove).
live_unit() {
  local p=$1 action=$2 prefix="" part rest=$1
  while [[ $rest == */* ]]; do
    part=${rest%%/*}
    rest=${rest#*/}
    prefix=${prefix:+$prefix/}$part
    if [[ ! -e $LIVE_ROOT/$prefix && ! -L $LIVE_ROOT/$prefix ]]; then
      if [[ $action == D ]]; then echo -; else echo "0:$prefix"; fi
      return 0
    fi
    if [[ -L $LIVE_ROOT/$prefix || ! -d $LIVE_ROOT/$prefix ]]; then
      LIVE_PROBLEM="$(shown "$prefix") on the live site is not a folder (a link or a file), so $(shown "$p") cannot be restored into it; restore $(shown "$prefix") itself."
      return 1
    fi
  done
  if [[ -e $LIVE_ROOT/$p || -L $LIVE_ROOT/$p ]]; then echo "1:$p"; elif [[ $action == D ]]; then echo -; else echo "0:$p"; fi
}

# The live content folder and every folder above it are real folders, not links.
check_live_root() {
  local rel=$TARGET_REL prefix="" part
  while [[ -n $rel ]]; do
    part=${rel%%/*}
    if [[ $rel == */* ]]; then rel=${rel#*/}; else rel=""; fi
    prefix=${prefix:+$prefix/}$part
    if [[ -L $SITE/$prefix || ! -d $SITE/$prefix ]]; then
      LIVE_PROBLEM="The site's folder $prefix is missing or not a folder; restore the whole backup instead."
      return 1
    fi
  done
}

# Before anything changes: the live side takes the chosen paths (exit 3 if not).
check_live_paths() {
  local record LIVE_PROBLEM=""
  LIVE_ROOT=$SITE/$TARGET_REL
  check_live_root || die LIVE_PATH_NOT_A_FOLDER "$EXIT_REFUSED" "$LIVE_PROBLEM"
  for record in "${CHOSEN_PATHS[@]}"; do
    live_unit "${record:2}" "${record:0:1}" >/dev/null ||
      die LIVE_PATH_NOT_A_FOLDER "$EXIT_REFUSED" "$LIVE_PROBLEM Nothing was changed."
  done
}

# The chosen tables of the dump (R) are among its CREATE TABLE lines (exit 3 if not).
check_chosen_tables() {
  local dump=$1 record missing=""
  LC_ALL=C sed -n 's/^CREATE TABLE `\(.*\)` ($/\1/p' -- "$dump" >"$TMP_DIR/dump-tables"
  local -A in_dump=()
  while IFS= read -r record; do in_dump[$record]=1; done <"$TMP_DIR/dump-tables"
  for record in "${CHOSEN_TABLES[@]}"; do
    if [[ $record == R:* && -z ${in_dump[${record:2}]:-} ]]; then missing=${record:2}; break; fi
  done
  if [[ -n $missing ]]; then
    die TABLE_NOT_FOUND "$EXIT_REFUSED" "This backup's database has no table $(shown "$missing"); nothing was changed."
  fi
}

# SQL list of the chosen tables' names (validated: no quote or backslash in them).
tables_sql_list() {
  local record out="" kind=${1:-}
  for record in "${CHOSEN_TABLES[@]}"; do
    [[ -z $kind || $record == "$kind":* ]] || continue
    out+="${out:+, }'${record:2}'"
  done
  printf '%s' "${out:-NULL}"
}

# After the import: the chosen tables are tables of the scratch database, not views live,
# and no foreign key links a chosen table with one that is not.
check_tables_fit() {
  local all in n
  all="$(tables_sql_list)"
  in="$(tables_sql_list R)"
  n="$(db_query "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$SCRATCH_DB'
    AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME IN ($in)")"
  local wanted=0 record
  for record in "${CHOSEN_TABLES[@]}"; do [[ $record == R:* ]] && wanted=$((wanted + 1)); done
  ((n == wanted)) || die TABLE_NOT_FOUND "$EXIT_REFUSED" "A chosen table is not a table of this backup's database; nothing was changed."
  n="$(db_query "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$LIVE_DB'
    AND TABLE_TYPE <> 'BASE TABLE' AND TABLE_NAME IN ($all)")"
  ((n == 0)) || die TABLE_NOT_FOUND "$EXIT_REFUSED" "A chosen table is a view in the site's database; nothing was changed."
  n="$(db_query "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS
    WHERE (CONSTRAINT_SCHEMA = '$SCRATCH_DB' AND TABLE_NAME IN ($in) AND REFERENCED_TABLE_NAME NOT IN ($all))
       OR (CONSTRAINT_SCHEMA = '$LIVE_DB' AND TABLE_NAME NOT IN ($all) AND REFERENCED_TABLE_NAME IN ($all))
       OR (CONSTRAINT_SCHEMA = '$LIVE_DB' AND TABLE_NAME IN ($all) AND REFERENCED_TABLE_NAME NOT IN ($all))")"
  ((n == 0)) || die TABLES_LINKED "$EXIT_REFUSED" "A chosen table is linked by a foreign key to a table that is not chosen; choose them together. Nothing was changed."
}

# --- download -----------------------------------------------------------------
# The chosen paths of the snapshot into the staging folder, then moved to $JOURNAL_DIR/staged
# (a fixed name --recover finds without the snapshot).
download_chosen_paths() {
  restore_chosen_paths "$FULL_ID" "$SNAP_CONTENT"
  finish_chosen_download
}

# restore_chosen_paths <snapshot> <its content folder>: restic restore of the chosen paths.
restore_chosen_paths() {
  local snapshot=$1 content=$2 record i
  local -a wanted=()
  for record in "${CHOSEN_PATHS[@]}"; do
    [[ $record == R:* ]] && wanted+=("$content/${record:2}")
  done
  # Batches keep restic's argument list far below the system's limit.
  for ((i = 0; i < ${#wanted[@]}; i += 200)); do
    restic_restore "$snapshot" "$STAGING" "${wanted[@]:i:200}"
  done
}

# What was downloaded is the snapshot's content folder and holds every chosen path.
finish_chosen_download() {
  local record any=0
  for record in "${CHOSEN_PATHS[@]}"; do [[ $record == R:* ]] && any=1 && break; done
  if ((any)); then
    [[ -d $STAGING$SNAP_CONTENT ]] || die RESTORE_FAILED "$EXIT_FAILED" "The backup's files could not be downloaded; the site was not changed."
    mv -T -- "$STAGING$SNAP_CONTENT" "$JOURNAL_DIR/staged"
  else
    mkdir -p -- "$JOURNAL_DIR/staged"
  fi
  for record in "${CHOSEN_PATHS[@]}"; do
    [[ $record == R:* ]] || continue
    if [[ ! -e $JOURNAL_DIR/staged/${record:2} && ! -L $JOURNAL_DIR/staged/${record:2} ]]; then
      die RESTORE_FAILED "$EXIT_FAILED" "The backup's files could not be downloaded; the site was not changed."
    fi
  done
}

# --- the early download -----------------------------------------------------------
# Each restic start derives the repository key and reads the index (~0.5 s here), and a
# partial restore needs two before the swap: the listing (whose snapshot it is, where its
# content folder is, the chosen paths in it and their size) and the download. So the download
# of the chosen paths starts with the listing instead of after it (restore: start_early_download
# before verify_snapshot), into the staging folder, which is this script's alone (root only,
# under .restore, never served). Nothing live is touched, and the site is not stopped, before
# every check has passed as before (ownership, the paths in the snapshot and on the live side,
# space); a check that fails stops the download and removes the staging folder, and the
# restore fails as it did, nothing changed. A journal (STEP=prepared) is written before the
# download starts, so a killed script's staging folder is removed by --recover(-all).
# It starts only when
#   - the snapshot is named by its full id: the listing and the download read the same
#     snapshot (a prefix could resolve otherwise between the two);
#   - the live site has its content folder: the snapshot's is taken to be where this server's
#     backups put it, $SITE/<content folder>. The listing then says where it is; elsewhere (a
#     snapshot made on another server, a legacy daily one) the early download restored
#     nothing usable: it is stopped and removed, and the download runs after the checks;
#   - the disk has at least EARLY_FREE_FLOOR_MB (1024) free beyond the space margin: the
#     space check needs the listing, and until it lands the download may write; a restore
#     that does not fit is refused by that check (CHECKING_SPACE) as before, the download
#     stopped. Until the checks have passed, a guard (early_space_guard) stops the download
#     when the free space falls below half that floor beyond the margin (a large selection
#     in a snapshot whose listing takes long); the download then runs after the checks, as
#     a full restore's does.
# It runs at the normal priority (a full download is reniced); once the listing shows the
# chosen paths hold more than EARLY_NICE_BYTES, it is reniced too (renice_download).
EARLY_ACTIVE=0 EARLY_CONTENT="" EARLY_KEYS="" EARLY_FLAGS=""
readonly EARLY_FREE_FLOOR_MB=1024 EARLY_NICE_BYTES=$((64 * 1024 * 1024))

start_early_download() {
  local rel avail
  # shellcheck disable=SC2153 # set by customer-restore's parse_args
  [[ $SNAPSHOT =~ ^[0-9a-f]{64}$ ]] || return 0
  rel="$(content_rel_of "$SITE")"
  [[ -n $rel && ! -L $SITE/$rel ]] || return 0
  avail="$(df -B1 --output=avail -- "$CUSTOMERS_ROOT" | tail -n 1 | tr -d ' ')"
  [[ $avail =~ ^[0-9]+$ ]] || return 0
  ((avail >= (SPACE_MARGIN_MB + EARLY_FREE_FLOOR_MB) * 1024 * 1024)) || return 0
  journal_init_dir "$JOURNAL_DIR"
  rm -rf -- "$STAGING" "$DUMP_STAGING" "$UNDO_DIR" "$DISCARD_DIR" "$JOURNAL_DIR/staged"
  rm -f -- "$JOURNAL_DIR/units" "$JOURNAL_DIR/parent-times" "$JOURNAL_DIR/tables.plan"
  JOURNAL=([CUSTOMER]="$CUSTOMER" [SCOPE]="$SCOPE" [CONTENT]="$rel" [HAD_LIVE]=1
    [STOPPED]=0 [KIND]="$KIND" [JOB]="$JOB" [STEP]=prepared
    [PARTIAL_FILES]="$PARTIAL_FILES" [PARTIAL_TABLES]="$PARTIAL_TABLES")
  journal_write
  EARLY_ACTIVE=1
  mkdir -p -- "$STAGING"
  chmod 0700 -- "$STAGING"
  EARLY_CONTENT=$SITE/$rel EARLY_KEYS=$TMP_DIR/early-keys EARLY_FLAGS=$TMP_DIR/early
  start_branch files early_download
}

# Branch "files" of an early download. Then, while the listing still runs, the keys
# check_chosen_paths looks the chosen paths up by (EARLY_KEYS, for that content folder).
early_download() {
  PROGRESS_PHASE=DOWNLOADING
  # This shell's pid, taken here: in the background command's arguments it would be the
  # guard's own (and a guard watching itself outlives the branch).
  local guard me=$BASHPID
  early_space_guard "$me" </dev/null >/dev/null 3>&- 8>&- 9>&- &
  guard=$!
  restore_chosen_paths "$SNAPSHOT" "$EARLY_CONTENT"
  kill "$guard" 2>/dev/null || true
  wait "$guard" 2>/dev/null || true
  local record
  for record in "${CHOSEN_PATHS[@]}"; do
    [[ $record == R:* ]] && printf '%s\0' "$EARLY_CONTENT/${record:2}"
  done | path_keys >"$EARLY_KEYS.tmp"
  mv -- "$EARLY_KEYS.tmp" "$EARLY_KEYS"
}

# early_space_guard <branch pid>: background, in the early download's branch. Until the
# checks have passed ($EARLY_FLAGS.checked), a free space below the margin + half the floor
# stops the download ($EARLY_FLAGS.stopped, SIGTERM to the branch).
early_space_guard() {
  local branch=$1 avail floor=$(((SPACE_MARGIN_MB + EARLY_FREE_FLOOR_MB / 2) * 1024 * 1024))
  while sleep 0.2; do
    [[ ! -e $EARLY_FLAGS.checked ]] && kill -0 "$branch" 2>/dev/null || return 0
    avail="$(df -B1 --output=avail -- "$CUSTOMERS_ROOT" | tail -n 1 | tr -d ' ')"
    [[ $avail =~ ^[0-9]+$ ]] || continue
    if ((avail < floor)) && [[ ! -e $EARLY_FLAGS.checked ]]; then
      : >"$EARLY_FLAGS.stopped"
      kill -TERM "$branch" 2>/dev/null || true
      return 0
    fi
  done
}

# After the checks: whether the early download is the one wanted (it read the snapshot's
# content folder, and the space guard did not stop it); if not, it is stopped and its
# staging folder emptied.
early_download_usable() {
  ((EARLY_ACTIVE)) || return 1
  : >"$EARLY_FLAGS.checked"
  if [[ -e $EARLY_FLAGS.stopped ]]; then
    log "The early download was stopped: the disk was getting full; downloading after the checks"
  elif [[ $SNAP_CONTENT == "$EARLY_CONTENT" && $FULL_ID == "$SNAPSHOT" ]]; then
    return 0
  else
    log "The backup's files are not where this server's backups put them; downloading them again"
  fi
  stop_branches
  rm -rf -- "$STAGING"
  return 1
}

# A check failed before the journal took over: the early download is stopped (on_exit's
# stop_branches) and everything it wrote removed.
discard_early_download() {
  ((EARLY_ACTIVE)) || return 0
  rm -rf -- "$JOURNAL_DIR"
  rmdir -- "$CUSTOMERS_ROOT/.restore" 2>/dev/null || true
  EARLY_ACTIVE=0
}

# The chosen paths are big: the running download (the branch, restic and every thread of
# them) gets the priority a full download has (download_files). Best effort.
renice_download() {
  ((PARTIAL_BYTES > EARLY_NICE_BYTES)) || return 0
  local root=${BRANCH_PIDS[files]:-} pid ppid task
  [[ -n $root ]] || return 0
  local -A parent_of=() tree=([$root]=1)
  while read -r pid ppid; do parent_of[$pid]=$ppid; done < <(ps -e -o pid=,ppid= 2>/dev/null)
  # Descendants: a pid is tree once its parent is (repeated until nothing is added).
  local added=1
  while ((added)); do
    added=0
    for pid in "${!parent_of[@]}"; do
      if [[ -z ${tree[$pid]:-} && -n ${tree[${parent_of[$pid]}]:-} ]]; then
        tree[$pid]=1
        added=1
      fi
    done
  done
  local -a tids=()
  for pid in "${!tree[@]}"; do
    for task in /proc/"$pid"/task/*; do [[ -d $task ]] && tids+=("${task##*/}"); done
  done
  ((${#tids[@]} == 0)) || renice -n 5 -p "${tids[@]}" >/dev/null 2>&1 || true
}

# --- swap -------------------------------------------------------------------------
# Written with the site stopped, before the first rename: the units and the live parents'
# times (files), the tables moved out and in (database), and the undo point's manifest.
plan_partial() {
  local record unit LIVE_PROBLEM="" parent
  local -A seen=() parents=()
  LIVE_ROOT=$SITE/${JOURNAL[CONTENT]}
  if [[ ${JOURNAL[PARTIAL_FILES]:-0} == 1 ]]; then
    check_live_root || die LIVE_PATH_NOT_A_FOLDER "$EXIT_FAILED" "$LIVE_PROBLEM The previous version was kept."
    : >"$JOURNAL_DIR/units.tmp"
    : >"$JOURNAL_DIR/parent-times.tmp"
    for record in "${CHOSEN_PATHS[@]}"; do
      unit="$(live_unit "${record:2}" "${record:0:1}")" ||
        die LIVE_PATH_NOT_A_FOLDER "$EXIT_FAILED" "$LIVE_PROBLEM The previous version was kept."
      [[ $unit != - ]] || continue
      [[ -z ${seen[${unit:2}]:-} ]] || continue
      seen[${unit:2}]=1
      printf '%s%s\0' "${record:0:1}" "$unit" >>"$JOURNAL_DIR/units.tmp"
      parent=.
      [[ ${unit:2} == */* ]] && parent=${unit:2} && parent=${parent%/*}
      if [[ -z ${parents[$parent]:-} ]]; then
        parents[$parent]=1
        printf '%s:%s\0' "$(stat -c %.9Y -- "$LIVE_ROOT/$parent")" "$parent" >>"$JOURNAL_DIR/parent-times.tmp"
      fi
    done
    sync -- "$JOURNAL_DIR/units.tmp" "$JOURNAL_DIR/parent-times.tmp" 2>/dev/null || true
    mv -- "$JOURNAL_DIR/parent-times.tmp" "$JOURNAL_DIR/parent-times"
    mv -- "$JOURNAL_DIR/units.tmp" "$JOURNAL_DIR/units"
  fi
  if [[ ${JOURNAL[PARTIAL_TABLES]:-0} == 1 ]]; then
    # What the swap replaces, read now that nothing writes it: the chosen live tables and
    # their triggers (for an undo, and as SQL for the undo point's dump).
    local -a moved_out=()
    mapfile -t moved_out < <(db_query "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$LIVE_DB'
      AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME IN ($(tables_sql_list)) ORDER BY TABLE_NAME")
    save_objects "$LIVE_DB" "$JOURNAL_DIR/live-objects.json" ||
      die DATABASE_DUMP_FAILED "$EXIT_FAILED" "The site's current database could not be saved before the restore; nothing was changed."
    chosen_triggers "$JOURNAL_DIR/live-objects.json" "$JOURNAL_DIR/live-triggers.json"
    : >"$JOURNAL_DIR/live-objects.sql.tmp"
    if ((${#moved_out[@]} > 0)); then
      mysqldump --defaults-extra-file="$DB_DEFAULTS_FILE" --single-transaction --skip-comments \
        --default-character-set=utf8mb4 --no-create-info --no-data --triggers --skip-routines \
        --skip-events "$LIVE_DB" -- "${moved_out[@]}" >"$JOURNAL_DIR/live-objects.sql.tmp" ||
        die DATABASE_DUMP_FAILED "$EXIT_FAILED" "The site's current database could not be saved before the restore; nothing was changed."
    fi
    mv -- "$JOURNAL_DIR/live-objects.sql.tmp" "$JOURNAL_DIR/live-objects.sql"
    {
      for record in "${moved_out[@]}"; do printf 'O:%s\n' "$record"; done
      for record in "${CHOSEN_TABLES[@]}"; do [[ $record == R:* ]] && printf 'I:%s\n' "${record:2}"; done
    } >"$JOURNAL_DIR/tables.plan.tmp"
    sync -- "$JOURNAL_DIR/tables.plan.tmp" 2>/dev/null || true
    mv -- "$JOURNAL_DIR/tables.plan.tmp" "$JOURNAL_DIR/tables.plan"
  fi
  write_manifest
}

# A live folder and every folder above it up to the content folder are real folders, no
# link among them (checked again right before each rename; builtins only: this runs with
# the site in maintenance).
check_real_parent() {
  local rel=$1 prefix="" part
  [[ $rel == . ]] && return 0
  while [[ -n $rel ]]; do
    part=${rel%%/*}
    if [[ $rel == */* ]]; then rel=${rel#*/}; else rel=""; fi
    prefix=${prefix:+$prefix/}$part
    [[ -d $LIVE_ROOT/$prefix && ! -L $LIVE_ROOT/$prefix ]] || return 1
  done
}

# Before the swap: the undo folder's content folder and the folders that will hold what the
# swap moves aside (any unit's parent is a chosen path's parent or above it).
prepare_undo_folders() {
  local undo_root record
  undo_root="$(previous_dir)"
  {
    printf '%s\0' "$undo_root/."
    for record in "${CHOSEN_PATHS[@]}"; do
      if [[ ${record:2} == */* ]]; then printf '%s\0' "$undo_root/${record:2}"; fi
    done
  } | xargs -0 -r dirname -z -- | xargs -0 -r mkdir -p --
}

# The files part of the swap: each unit moved aside (if it existed) and its staged copy in.
swap_units() {
  local record unit parent undo_root
  undo_root="$(previous_dir)"
  while IFS= read -r -d '' record; do
    unit=${record:3}
    parent=.
    [[ $unit == */* ]] && parent=${unit%/*}
    check_real_parent "$parent" ||
      die LIVE_PATH_NOT_A_FOLDER "$EXIT_FAILED" "The site's folder $(shown "$parent") is not a folder any more; the previous version was put back."
    if [[ ${record:1:1} == 1 ]]; then
      [[ -d $undo_root/$parent ]] || mkdir -p -- "$undo_root/$parent"
      mv -T -- "$LIVE_ROOT/$unit" "$undo_root/$unit"
    fi
    if [[ ${record:0:1} == R ]]; then mv -T -- "$JOURNAL_DIR/staged/$unit" "$LIVE_ROOT/$unit"; fi
  done <"$JOURNAL_DIR/units"
  restore_parent_times
}

# The live parents' times as they were (a rename in a folder changes its time).
restore_parent_times() {
  local record time parent
  [[ -f $JOURNAL_DIR/parent-times ]] || return 0
  while IFS= read -r -d '' record; do
    time=${record%%:*}
    parent=${record#*:}
    [[ -d $LIVE_ROOT/$parent && ! -L $LIVE_ROOT/$parent ]] || continue
    touch -h -d "@$time" -- "$LIVE_ROOT/$parent"
  done <"$JOURNAL_DIR/parent-times"
}

# For the undo point, after the switch-over: the undo folder's folders above what was moved
# aside get the owner, mode and time of their live counterparts (the parents' times as they
# were before the swap), so a later undo that has to create one creates it as it was.
fit_undo_folders() {
  [[ -f $JOURNAL_DIR/parent-times ]] || return 0
  local undo_root record time parent prefix rel part
  local -A done_=()
  LIVE_ROOT=$SITE/${JOURNAL[CONTENT]}
  undo_root="$(previous_dir)"
  while IFS= read -r -d '' record; do
    time=${record%%:*}
    parent=${record#*:}
    [[ $parent == . ]] && continue
    prefix="" rel=$parent
    while [[ -n $rel ]]; do
      part=${rel%%/*}
      if [[ $rel == */* ]]; then rel=${rel#*/}; else rel=""; fi
      prefix=${prefix:+$prefix/}$part
      [[ -z ${done_[$prefix]:-} ]] || continue
      done_[$prefix]=1
      [[ -d $undo_root/$prefix && ! -L $undo_root/$prefix && -d $LIVE_ROOT/$prefix && ! -L $LIVE_ROOT/$prefix ]] || continue
      chown --reference="$LIVE_ROOT/$prefix" -- "$undo_root/$prefix"
      chmod --reference="$LIVE_ROOT/$prefix" -- "$undo_root/$prefix"
      if [[ $prefix == "$parent" ]]; then
        touch -h -d "@$time" -- "$undo_root/$prefix"
      else
        touch -h -r "$LIVE_ROOT/$prefix" -- "$undo_root/$prefix"
      fi
    done
  done <"$JOURNAL_DIR/parent-times"
}

# Puts back every unit, whatever rename was the last one done (each is atomic): a unit
# found in the undo folder goes back; a created unit whose staged copy is gone is removed.
undo_units() {
  local record unit undo_root i=0
  [[ -f $JOURNAL_DIR/units ]] || return 0
  LIVE_ROOT=$SITE/${JOURNAL[CONTENT]}
  undo_root="$(previous_dir)"
  rm -rf -- "$DISCARD_DIR"
  mkdir -p -- "$DISCARD_DIR"
  while IFS= read -r -d '' record; do
    unit=${record:3}
    i=$((i + 1))
    if [[ ${record:1:1} == 1 ]]; then
      if [[ -e $undo_root/$unit || -L $undo_root/$unit ]]; then
        if [[ -e $LIVE_ROOT/$unit || -L $LIVE_ROOT/$unit ]]; then mv -T -- "$LIVE_ROOT/$unit" "$DISCARD_DIR/$i"; fi
        mv -T -- "$undo_root/$unit" "$LIVE_ROOT/$unit"
      fi
    elif [[ ${record:0:1} == R ]]; then
      if [[ ! -e $JOURNAL_DIR/staged/$unit && ! -L $JOURNAL_DIR/staged/$unit ]] &&
        [[ -e $LIVE_ROOT/$unit || -L $LIVE_ROOT/$unit ]]; then
        mv -T -- "$LIVE_ROOT/$unit" "$DISCARD_DIR/$i"
      fi
    fi
  done <"$JOURNAL_DIR/units"
  restore_parent_times
}

# Drops the triggers of the given tables (an SQL list) in a database.
drop_table_triggers() {
  local db=$1 list=$2
  db_query "SELECT CONCAT('DROP TRIGGER IF EXISTS \`$db\`.\`', REPLACE(TRIGGER_NAME, '\`', '\`\`'), '\`;')
      FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '$db' AND EVENT_OBJECT_TABLE IN ($list)" >"$TMP_DIR/drop-triggers.sql"
  db_client <"$TMP_DIR/drop-triggers.sql"
}

# <objects.json> <out.json>: the triggers of the chosen tables alone.
chosen_triggers() {
  local names
  names="$(for record in "${CHOSEN_TABLES[@]}"; do printf '%s\0' "${record:2}"; done | jq -R -s 'split("\u0000") | map(select(. != ""))')"
  jq -c --argjson t "$names" 'map(select(.kind == "TRIGGER" and ((.table // "") as $x | $t | index($x))))' "$1" >"$2"
}

# plan_list <O|I>: the SQL list of the plan's tables of that kind.
plan_list() {
  local record list=""
  while IFS= read -r record; do
    [[ $record == "$1":* ]] && list+="${list:+, }'${record:2}'"
  done <"$JOURNAL_DIR/tables.plan"
  printf '%s' "${list:-NULL}"
}

# rename_plan <forward|back>: ONE RENAME TABLE of the plan: forward moves the live tables
# out (into customer_N__previous) and the scratch ones in; back undoes it.
rename_plan() {
  local direction=$1 record renames=""
  while IFS= read -r record; do
    local name=${record:2}
    case $direction:${record:0:1} in
      forward:O) renames+="${renames:+, }\`$LIVE_DB\`.\`$name\` TO \`$PREVIOUS_DB\`.\`$name\`" ;;
      back:I) renames+="${renames:+, }\`$LIVE_DB\`.\`$name\` TO \`$SCRATCH_DB\`.\`$name\`" ;;
    esac
  done <"$JOURNAL_DIR/tables.plan"
  while IFS= read -r record; do
    local name=${record:2}
    case $direction:${record:0:1} in
      forward:I) renames+="${renames:+, }\`$SCRATCH_DB\`.\`$name\` TO \`$LIVE_DB\`.\`$name\`" ;;
      back:O) renames+="${renames:+, }\`$PREVIOUS_DB\`.\`$name\` TO \`$LIVE_DB\`.\`$name\`" ;;
    esac
  done <"$JOURNAL_DIR/tables.plan"
  [[ -z $renames ]] || db_query "RENAME TABLE $renames"
}

swap_chosen_tables() {
  drop_table_triggers "$LIVE_DB" "$(plan_list O)"
  rename_plan forward
  apply_objects "$LIVE_DB" "$JOURNAL_DIR/restored-triggers.json" --hints "$JOURNAL_DIR/definers.tsv" ||
    die DATABASE_IMPORT_FAILED "$EXIT_FAILED" "The backup's triggers could not be restored; the site was not changed."
}

# The RENAME is atomic: its first table tells whether it ran.
undo_chosen_tables() {
  [[ -f $JOURNAL_DIR/tables.plan ]] || return 0
  # Run under errexit (undo_swap_checked): a count that fails stops the undo, it never reads
  # as "not renamed".
  local first renamed=0 count
  first="$(grep -m 1 '^O:' "$JOURNAL_DIR/tables.plan" || true)"
  if [[ -n $first ]]; then
    count="$(db_query "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$PREVIOUS_DB' AND TABLE_NAME = '${first:2}'")"
    if ((count == 1)); then renamed=1; fi
  else
    first="$(grep -m 1 '^I:' "$JOURNAL_DIR/tables.plan" || true)"
    if [[ -n $first ]]; then
      count="$(db_query "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$SCRATCH_DB' AND TABLE_NAME = '${first:2}'")"
      if ((count == 0)); then renamed=1; fi
    fi
  fi
  drop_table_triggers "$LIVE_DB" "$(plan_list I)"
  drop_table_triggers "$LIVE_DB" "$(plan_list O)"
  if ((renamed)); then
    db_query "CREATE DATABASE IF NOT EXISTS \`$SCRATCH_DB\`"
    rename_plan back
  fi
  apply_objects "$LIVE_DB" "$JOURNAL_DIR/live-triggers.json" --exact
}
