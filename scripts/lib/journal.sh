# shellcheck shell=bash
# The restore journal: KEY=VALUE lines in .restore/customer-N/journal, written
# (tmp + rename) BEFORE each step, so --recover knows how far a killed restore
# got. It is parsed, never sourced.
#   STEP       prepared | safety | downloading | importing | swapping |
#              files_swap | db_swap | swapped | undo_point | cleanup
#              (prepared: only the early download of chosen paths into the staging
#              folder has started, before the checks; partial.sh)
#   SCOPE      db | files | both
#   CONTENT    content folder relative to the site (wordpress | volumes/files)
#   HAD_LIVE   1 if the site had that content folder before the restore
#   STOPPED    1 once the stop command may have run
#   LIVE_TABLES/RESTORED_TABLES  table counts before the RENAME TABLE
#   KIND       the restored snapshot's repository (manual | daily | safety)
#   JOB        the job id (tags the undo point), or empty
#   PARTIAL_FILES/PARTIAL_TABLES  1 when only chosen paths/tables are restored (partial.sh)
#   UNDO       uploading from the start of the undo point's upload; stored once it is
#              in the safety repository
#   UNDONE     1 once a rollback put everything back (only the clean-up may be left)

declare -A JOURNAL=()

journal_dir() { printf '%s/.restore/customer-%s' "$CUSTOMERS_ROOT" "$1"; }

journal_init_dir() {
  local dir=$1
  # Hidden from the sites and readable by root only.
  mkdir -p -- "$dir"
  chmod 0700 -- "$CUSTOMERS_ROOT/.restore" "$dir"
}

journal_write() {
  local file="$JOURNAL_DIR/journal" key
  {
    for key in "${!JOURNAL[@]}"; do printf '%s=%s\n' "$key" "${JOURNAL[$key]}"; done
  } >"$file.tmp"
  sync -- "$file.tmp" 2>/dev/null || true
  mv -- "$file.tmp" "$file"
}

# journal_set KEY=VALUE...: update and persist.
journal_set() {
  local pair
  for pair in "$@"; do JOURNAL[${pair%%=*}]=${pair#*=}; done
  journal_write
}

journal_read() {
  local file="$JOURNAL_DIR/journal" key value
  JOURNAL=()
  [[ -f $file ]] || return 1
  while IFS='=' read -r key value; do
    case $key in
      STEP | SCOPE | CONTENT | HAD_LIVE | STOPPED | LIVE_TABLES | RESTORED_TABLES | CUSTOMER | KIND | JOB | UNDO | UNDONE | PARTIAL_FILES | PARTIAL_TABLES) JOURNAL[$key]=$value ;;
    esac
  done <"$file"
  return 0
}

# Steps in order; journal_reached <step> is true once STEP is at or past it.
JOURNAL_STEPS=(prepared safety downloading importing swapping files_swap db_swap swapped undo_point cleanup)
journal_step_index() {
  local i
  for i in "${!JOURNAL_STEPS[@]}"; do
    [[ ${JOURNAL_STEPS[$i]} == "$1" ]] && { echo "$i"; return; }
  done
  echo -1
}
journal_reached() {
  (($(journal_step_index "${JOURNAL[STEP]:-}") >= $(journal_step_index "$1")))
}
