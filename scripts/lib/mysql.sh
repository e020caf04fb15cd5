# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# MariaDB helpers. Credentials only via --defaults-extra-file (never argv).
# Database names are built from validated digits, so they are safe to embed;
# table/object names are quoted by the server (REPLACE of backticks), never
# by the shell.

db_client() { mariadb --defaults-extra-file="$DB_DEFAULTS_FILE" "$@"; }
# db_query <sql>: batch, no headers, raw values.
db_query() { db_client --batch --skip-column-names --raw -e "$1"; }

db_exists() {
  [[ "$(db_query "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$1'")" == 1 ]]
}
db_table_count() {
  db_query "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$1' AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')"
}

# dump_database <db> <file>: consistent dump, written under a temporary name
# and renamed only when mysqldump succeeded.
dump_database() {
  local db=$1 file=$2 rc=0
  run_child mysqldump --defaults-extra-file="$DB_DEFAULTS_FILE" --single-transaction \
    --routines --triggers --events --hex-blob --default-character-set=utf8mb4 \
    "$db" >"$file.tmp" || rc=$?
  if ((rc != 0)); then
    rm -f -- "$file.tmp"
    return "$rc"
  fi
  mv -- "$file.tmp" "$file"
}

# neutralise_dump <db> <in> <out>: dumps made with --databases (or legacy ones)
# may switch or recreate databases; those lines are commented out so an import
# can only ever touch the database it was pointed at. Trigger/view/routine
# definitions keep the text they were written with, which may qualify names
# with the live database ("customer_N.t"): outside INSERT lines (row data is
# never rewritten) that qualification is removed, so they land in the scratch
# database too. Limitation: a table COMMENT containing "customer_N." loses it.
neutralise_dump() {
  local db=$1
  shift
  sed -E \
    -e "/^INSERT INTO /! s/\`$db\`\\.//g" \
    -e "/^INSERT INTO /! s/\\b$db\\.//g" \
    -e 's/^[[:space:]]*(USE|CREATE[[:space:]]+DATABASE|CREATE[[:space:]]+SCHEMA|DROP[[:space:]]+DATABASE|DROP[[:space:]]+SCHEMA)([[:space:]]|`|$).*$/-- (neutralised by customer-restore)/I' \
    -e 's/^\/\*![0-9]*[[:space:]]*(USE|CREATE[[:space:]]+DATABASE|CREATE[[:space:]]+SCHEMA|DROP[[:space:]]+DATABASE|DROP[[:space:]]+SCHEMA)([[:space:]]|`).*$/-- (neutralised by customer-restore)/I' \
    "$1" >"$2"
}

# A complete mysqldump output ends with this comment; a truncated one does not.
dump_is_complete() { tail -c 4096 "$1" | grep -q -- '-- Dump completed'; }

import_dump() {
  local db=$1 file=$2
  run_child_stdin "$file" mariadb --defaults-extra-file="$DB_DEFAULTS_FILE" --binary-mode \
    --default-character-set=utf8mb4 "$db"
}

# SQL returning one DROP statement per view/trigger/routine/event of a database.
# Views and triggers cannot follow their tables across databases in a RENAME
# TABLE, so they (and routines/events, to restore the database exactly) are
# dropped around the swap and recreated from mysqldump's own definitions.
drop_objects() {
  local db=$1
  db_query "SET SESSION group_concat_max_len = 1073741824;
    SELECT CONCAT('DROP VIEW IF EXISTS \`$db\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`;')
      FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '$db'
    UNION ALL SELECT CONCAT('DROP TRIGGER IF EXISTS \`$db\`.\`', REPLACE(TRIGGER_NAME, '\`', '\`\`'), '\`;')
      FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '$db'
    UNION ALL SELECT CONCAT('DROP ', ROUTINE_TYPE, ' IF EXISTS \`$db\`.\`', REPLACE(ROUTINE_NAME, '\`', '\`\`'), '\`;')
      FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '$db'
    UNION ALL SELECT CONCAT('DROP EVENT IF EXISTS \`$db\`.\`', REPLACE(EVENT_NAME, '\`', '\`\`'), '\`;')
      FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '$db'" >"$TMP_DIR/drop-objects.sql"
  db_client <"$TMP_DIR/drop-objects.sql"
}

# dump_objects <db> <file>: routines+events, then views, then triggers, as
# mysqldump writes them (unqualified, so they can be replayed into any db).
dump_objects() {
  local db=$1 file=$2
  local -a common=(--defaults-extra-file="$DB_DEFAULTS_FILE" --single-transaction --skip-comments
    --default-character-set=utf8mb4 --no-create-info --no-data)
  local -a views=()
  mapfile -t views < <(db_query "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '$db'")
  {
    mysqldump "${common[@]}" --skip-triggers --routines --events "$db"
    if ((${#views[@]} > 0)); then
      mysqldump --defaults-extra-file="$DB_DEFAULTS_FILE" --single-transaction --skip-comments \
        --default-character-set=utf8mb4 --no-data --skip-triggers "$db" -- "${views[@]}"
    fi
    mysqldump "${common[@]}" --triggers "$db"
  } >"$file.tmp"
  mv -- "$file.tmp" "$file"
}

apply_objects() {
  local db=$1 file=$2
  db_client --binary-mode --default-character-set=utf8mb4 "$db" <"$file"
}

# swap_tables <db> <out> <in>: ONE atomic RENAME TABLE moving every table of
# <db> into <out> and every table of <in> into <db>, so tables absent from
# <in> leave <db> as well. Built and executed server-side.
swap_tables() {
  local db=$1 out=$2 in=$3
  db_client -e "SET SESSION group_concat_max_len = 1073741824;
    SET @s = (SELECT CONCAT('RENAME TABLE ', GROUP_CONCAT(r SEPARATOR ', ')) FROM (
      SELECT CONCAT('\`$db\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\` TO \`$out\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`') AS r
        FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db' AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')
      UNION ALL
      SELECT CONCAT('\`$in\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\` TO \`$db\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`')
        FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$in' AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')
    ) AS renames);
    SET @s = COALESCE(@s, 'DO 0');
    PREPARE swap FROM @s; EXECUTE swap; DEALLOCATE PREPARE swap;"
}
