# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Ownership and layout of a snapshot: is it the customer's, and where in it are their content
# folder and database dump. The rule itself (by name, at which depths, what makes a legacy
# daily snapshot a customer's) is snapshot-layout.jq; this file lists what it reads and
# applies it. backup-repository (members) uses snapshot_ls, list_layout and layout_jq;
# customer-restore everything.
#
# Reads: TMP_DIR, LIB_DIR, LEGACY_DUMP_DIR, DEFAULT_ERR_CODE; for the restore's functions also
#   CUSTOMER, SNAPSHOT, KIND, SCOPE; verify_snapshot's hooks, each a function name (unset: the
#   function named in brackets): SNAPSHOT_LISTER [restic_run], SNAPSHOT_FACTS_READER
#   [snapshot_facts], LISTING_KEEPER [keep_listing], LISTING_LOCATOR [locate_in_listing].
# Sets (verify_snapshot): FULL_ID, SNAP_JSON, SNAP_PATHS_JSON (its paths), SNAP_LISTED (1: $TMP_DIR/ls.json is the whole
#   snapshot), SNAP_CONTENT (absolute path in the snapshot), SNAP_CONTENT_REL (wordpress |
#   volumes/files), SNAP_DUMP, SNAP_DUMP_SIZE.

SNAP_LISTED=0
SNAP_DUMP_SIZE=0

# snapshot_ls [--recursive] <snapshot> [folders...]: restic ls --json into $TMP_DIR/ls.json.
snapshot_ls() {
  local rc=0
  restic_run "$TMP_DIR/ls.json" ls --json "$@" || rc=$?
  ((rc == 0)) || restic_fail "$rc" "$DEFAULT_ERR_CODE" "The backup could not be read."
}

# layout_jq <snapshot json> <customer id, or "" for every customer> <jq program> [jq options
# and files...]: jq with snapshot-layout.jq and its parameters bound: $P (the snapshot's
# paths), $legacy (the legacy dump folder's name), $only (the customer, or null).
layout_jq() {
  local snap=$1 only=$2 program=$3
  shift 3
  local -a bind=(--argjson only null)
  [[ -z $only ]] || bind=(--arg only "$only")
  local paths=""
  # verify_snapshot has them from snapshot_facts already (a jq start less).
  [[ -n ${SNAP_PATHS_JSON:-} && $snap == "${SNAP_JSON:-}" ]] && paths=$SNAP_PATHS_JSON
  [[ -n $paths ]] || paths="$(jq -c '.paths // []' <<<"$snap")"
  jq -L "$LIB_DIR" --argjson P "$paths" \
    --arg legacy "$(basename -- "$LEGACY_DUMP_DIR")" "${bind[@]}" \
    "include \"snapshot-layout\"; $program" "$@"
}

# list_layout <snapshot id> <snapshot json> <customer id, or ""> <file>: the listing the rule
# reads of a snapshot that may hold every customer's site (a legacy daily one), level by
# level and never whole: its paths, then the few folders that can hold the customer's
# (everyone's: the site folders and dump folders), then the volumes/ folders among them.
# Folder names travel NUL-separated (a name may hold a newline); restic lists at most 1000
# folders a run (members lists every customer's: an argument list has a limit).
list_layout() {
  local id=$1 snap=$2 only=$3 out=$4 next i
  local -a folders=()
  : >"$out"
  mapfile -d '' -t folders < <(jq -j '.paths[] | ., "\u0000"' <<<"$snap")
  for next in level2_folders level3_folders ""; do
    # Level 2 may have none (holders that are the snapshot's paths are listed already),
    # level 3 some all the same.
    for ((i = 0; i < ${#folders[@]}; i += 1000)); do
      snapshot_ls "$id" "${folders[@]:i:1000}"
      cat -- "$TMP_DIR/ls.json" >>"$out"
    done
    [[ -n $next ]] || return 0
    layout_jq "$snap" "$only" "layout_nodes(\$only) | $next(\$P; \$legacy; \$only)[] | ., \"\\u0000\"" \
      -n -j "$out" >"$TMP_DIR/folders"
    mapfile -d '' -t folders <"$TMP_DIR/folders"
  done
}

# snapshot_facts <file> [paths|paths,total]: every fact of the snapshot's line, NUL-separated
# (one jq: each jq start costs tens of ms): the line, its id, whether it is tagged for this
# customer and kind, whether it is a legacy one (original plan: no customer tag at all), with
# "paths" its paths as JSON, and with "paths,total" also the bytes of every file it holds as
# its summary says (restic 0.17 and later: total_bytes_processed; "" when it has none). The file holds snapshot arrays (restic snapshots --json), or the
# first line of a listing (restic ls --json: the snapshot's own line, if it is one).
# Nothing when it is not exactly one snapshot whose id starts with the one asked for (an
# ambiguous prefix resolves to nothing: not found).
snapshot_facts() {
  jq -sj --arg p "$SNAPSHOT" --arg c "customer-$CUSTOMER" --arg k "$KIND" --arg with "${2:-}" '
    map(if type == "object" then [select(.struct_type == "snapshot")] else . end)
    | if (map(length) | add // 0) == 1
      and (.[0][0].id | if type == "string" then startswith($p) else false end) then
      .[0][0] | (.tags // []) as $t
      | (tojson, .id, (($t | index($c)) != null and ($t | index($k)) != null),
         ([$t[] | select(startswith("customer-"))] | length == 0),
         (if $with | startswith("paths") then (.paths // [] | tojson) else empty end),
         (if $with == "paths,total" then (.summary.total_bytes_processed | numbers // "") else empty end))
      | tostring, "\u0000"
    else empty end' "$1"
}

# After a failed restic call naming the snapshot: not found (or an ambiguous prefix) is said so.
snapshot_not_found_if_so() {
  if grep -qE 'no matching ID found|multiple IDs with prefix' "$TMP_DIR/restic.err"; then
    die SNAPSHOT_NOT_FOUND "$EXIT_REFUSED" "This backup was not found."
  fi
}

# Resolves the (prefix) id and checks ownership: tags customer-N and the kind, or (daily) a
# legacy snapshot without customer tags that holds this customer's content folder or dump.
verify_snapshot() {
  local rc=0 out="$TMP_DIR/snapshots.json"
  if [[ $KIND != daily ]]; then
    # Manual and safety snapshots are owned by tags only (never legacy ones holding
    # every site), so one listing of the snapshot gives everything: its own line
    # first (id, tags, paths), then its content (one restic start instead of two).
    # (customer-index sets SNAPSHOT_LISTER to a restic_run that streams the listing on, and
    # the hooks below to functions that reuse what its follower read of the stream.)
    if ! kept_listing "$TMP_DIR/ls.json" "$SNAPSHOT"; then
      "${SNAPSHOT_LISTER:-restic_run}" "$TMP_DIR/ls.json" ls --json "$SNAPSHOT" || rc=$?
    fi
    if ((rc != 0)); then
      check_interrupted
      snapshot_not_found_if_so
      restic_fail "$rc" RESTORE_FAILED "The backup could not be read."
    fi
    head -n 1 -- "$TMP_DIR/ls.json" >"$out"
  else
    restic_run "$out" snapshots --json "$SNAPSHOT" || rc=$?
  fi
  ((rc == 0)) || restic_fail "$rc" RESTORE_FAILED "The backup list could not be read."
  local tags_ok legacy
  local -a facts=()
  "${SNAPSHOT_FACTS_READER:-snapshot_facts}" "$out" paths >"$TMP_DIR/snapshot.facts"
  mapfile -d '' -t facts <"$TMP_DIR/snapshot.facts"
  ((${#facts[@]} == 5)) || die SNAPSHOT_NOT_FOUND "$EXIT_REFUSED" "This backup was not found."
  SNAP_JSON=${facts[0]} FULL_ID=${facts[1]} tags_ok=${facts[2]} legacy=${facts[3]} SNAP_PATHS_JSON=${facts[4]}
  if [[ $tags_ok == true ]]; then
    # Tagged for this customer, so it holds this customer's folders only: one
    # listing of all of it tells where the content and the dump are and how
    # big they are (one restic start instead of three or four).
    [[ $KIND != daily ]] || snapshot_ls "$FULL_ID"
    SNAP_LISTED=1
    [[ $KIND == daily ]] || "${LISTING_KEEPER:-keep_listing}" "$TMP_DIR/ls.json" "$FULL_ID"
    "${LISTING_LOCATOR:-locate_in_listing}"
    return
  fi
  if [[ $KIND == daily && $legacy == true ]]; then
    # A legacy snapshot may hold every customer's folders: only the few
    # directories that can hold this customer's are listed.
    locate_in_snapshot
    if [[ -n $SNAP_CONTENT || -n $SNAP_DUMP ]]; then return; fi
  fi
  die SNAPSHOT_NOT_OWNED "$EXIT_REFUSED" "This backup does not belong to this site."
}

# --- a snapshot's listing, kept ---------------------------------------------------------
# A snapshot never changes: its id is the hash of what it is (tags, paths, its tree, which is
# addressed by its content). So the whole listing of a manual or safety snapshot (restic ls
# --json, restic's exit 0 and the snapshot tagged for the customer) is kept by its repository
# and full id in $WORK_DIR/listings (root only; written whole or not at all) for
# BACKUPS_LISTING_KEEP_DAYS (default 7, as the index); a script that sets USE_KEPT_LISTING=1
# (customer-restore) and names the snapshot by its full id reads it from there instead of a
# restic start and a walk of every tree: a restore of chosen paths right after the customer
# browsed the backup (the index listed it) waits for its download alone. The listing says
# nothing of whether the snapshot is still in the repository: whatever reads the snapshot's
# data (the download) fails if it is gone, before anything is changed.
listing_kept_file() {
  local repo
  repo="$(printf '%s\0%s' "$KIND" "$RESTIC_REPOSITORY" | sha256sum)"
  printf '%s/listings/%s-%s.json' "$WORK_DIR" "${repo:0:16}" "$1"
}

# keep_listing <listing> <full id>: best effort (a full disk keeps nothing, and breaks nothing).
keep_listing() {
  [[ $2 =~ ^[0-9a-f]{64}$ ]] || return 0
  local file dir
  file="$(listing_kept_file "$2")"
  dir=${file%/*}
  # (the work folder exists: this script's scratch folder is in it)
  [[ -d $dir ]] || mkdir -m 0700 -- "$dir" 2>/dev/null || [[ -d $dir ]] || return 0
  if [[ -f $file ]]; then
    touch -- "$file" 2>/dev/null || true
    return 0
  fi
  if cp -- "$1" "$file.$$.tmp" 2>/dev/null; then
    mv -f -- "$file.$$.tmp" "$file" 2>/dev/null || rm -f -- "$file.$$.tmp"
  else
    rm -f -- "$file.$$.tmp"
  fi
  find "$dir" -maxdepth 1 -type f -mtime +"${BACKUPS_LISTING_KEEP_DAYS:-7}" -delete 2>/dev/null || true
}

# kept_listing <out> <snapshot>: the kept listing of that snapshot (full id) into <out>.
kept_listing() {
  [[ ${USE_KEPT_LISTING:-0} == 1 && $2 =~ ^[0-9a-f]{64}$ ]] || return 1
  local file
  file="$(listing_kept_file "$2")"
  [[ -f $file ]] || return 1
  cp -- "$file" "$1" 2>/dev/null
}

# The rule applied to the whole snapshot's listing in $TMP_DIR/ls.json (kept for check_space).
locate_in_listing() { locate_in "$TMP_DIR/ls.json"; }

# The rule applied to the few folders of the snapshot that can hold this customer's.
locate_in_snapshot() {
  list_layout "$FULL_ID" "$SNAP_JSON" "$CUSTOMER" "$TMP_DIR/layout.json"
  locate_in "$TMP_DIR/layout.json"
}

# locate_in <listing>: sets SNAP_CONTENT, SNAP_CONTENT_REL, SNAP_DUMP, SNAP_DUMP_SIZE.
# The rule reads folders and dumps alone (layout_nodes): the other lines, most of a whole
# snapshot's listing, are left out by grep before jq parses any (a superset: every folder's
# line holds "type":"dir", every dump's its name as is, restic writing both without escapes).
locate_in() {
  located_of_lines <"$1" >"$TMP_DIR/located"
  read_located "$TMP_DIR/located"
}

# located_of_lines: the rule over restic's listing lines on stdin (SNAP_JSON's snapshot, for
# CUSTOMER), printed NUL-separated for read_located. It may read a listing as restic writes it.
located_of_lines() {
  { grep -F -e '"type":"dir"' -e '"name":"customer_' || (($? == 1)); } \
    | layout_jq "$SNAP_JSON" "$CUSTOMER" 'layout_nodes($only) | located($P; $legacy; $only)
      | (.content, .rel, .dump, (.dump_size | tostring)) | ., "\u0000"' -n -j
}

# read_located <file>: sets SNAP_CONTENT, SNAP_CONTENT_REL, SNAP_DUMP, SNAP_DUMP_SIZE from
# located_of_lines' output.
read_located() {
  local -a found=()
  mapfile -d '' -t found <"$1"
  SNAP_CONTENT=${found[0]} SNAP_CONTENT_REL=${found[1]} SNAP_DUMP=${found[2]} SNAP_DUMP_SIZE=${found[3]}
}

check_scope_present() {
  if wants_files "$SCOPE" && [[ -z $SNAP_CONTENT ]]; then
    die SNAPSHOT_NOT_FOUND "$EXIT_REFUSED" "This backup does not contain the site's files."
  fi
  if wants_db "$SCOPE" && [[ -z $SNAP_DUMP ]]; then
    die SNAPSHOT_NOT_FOUND "$EXIT_REFUSED" "This backup does not contain the site's database."
  fi
}

# path_keys: reads absolute paths (NUL-separated) on stdin and prints, a line each, the text
# restic's JSON listing starts a node's line with for that path: "path":"<path as Go encodes
# it> (no closing quote: a prefix of the path and of everything below it). Go escapes &, < and
# > (and U+2028/9) where jq does not; a path whose key still differs (control characters)
# finds no line, which callers check: grep with these keys only narrows what jq then reads
# exactly, and a quote inside a value is always escaped, so a key never matches elsewhere.
path_keys() {
  jq -Rs -r 'split("\u0000")[] | select(. != "") | "\"path\":" + (tojson | rtrimstr("\"")
    | gsub("&"; "\\u0026") | gsub("<"; "\\u003c") | gsub(">"; "\\u003e")
    | gsub("\u2028"; "\\u2028") | gsub("\u2029"; "\\u2029"))'
}
