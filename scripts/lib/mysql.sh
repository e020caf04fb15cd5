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

# neutralise_dump <db> <in> <out>: the dump as it may be imported into the
# scratch database, or exit 3 when it cannot be made safe. The dump holds text
# the customer wrote (routine, trigger and view bodies, row data), and the
# import runs with rights on every customer database, so no edit may change how
# a single character is read: inside or outside a string, comment or quoted
# name. Three edits, each provably neutral there:
# - the header (before the first table or routine: mysqldump's own lines, each
#   a complete line) loses its database statements: dumps made with
#   --databases (the original plan's) create, drop and switch to customer_N;
# - later, a line that is exactly "USE `<db>`;" (mysqldump repeats it before
#   the views of a --databases dump) becomes a comment: neither holds a quote,
#   backslash or comment mark, so inside a string it changes nothing;
# - in the head of a trigger (mysqldump's line "/*!50003 CREATE*/ ...
#   TRIGGER", up to "FOR EACH ROW"), "<space>customer_N." and
#   "<space>`customer_N`." lose the qualification, so a trigger written as
#   "TRIGGER customer_N.t ... ON customer_N.posts" lands in the scratch database
#   and not the live one: the text removed holds no quote or backslash (the
#   backticks come in pairs), and the space before it stays, so nothing before
#   or after can join it into an escape, quote or comment. Bodies and row data
#   are never rewritten (MariaDB's dump writes each row on a line of its own, so
#   "not an INSERT line" would not spare the data); a qualified name in a body
#   names the live database, which is the restored one after the swap.
# Any other line that starts with USE or CREATE/DROP DATABASE/SCHEMA (another
# database, or such a line in a routine's text) stops the import: exit 3, and
# the rest of the dump is never read by the client.
neutralise_dump() {
  LC_ALL=C awk -v db="$1" '
    BEGIN { header = 1; use_live = "USE `" db "`;"; plain = " " db "."; quoted = " `" db "`." }
    function neutral() { print "-- (neutralised by customer-restore)" }
    # Literal (not regular expression) removal, left to right, keeping the space.
    function unqualify(text,   out, i, j) {
      out = ""
      for (;;) {
        i = index(text, plain); j = index(text, quoted)
        if (i > 0 && (j == 0 || i < j)) { out = out substr(text, 1, i); text = substr(text, i + length(plain)) }
        else if (j > 0) { out = out substr(text, 1, j); text = substr(text, j + length(quoted)) }
        else return out text
      }
    }
    {
      statement = tolower($0)
      sub(/^\/\*![0-9]+[ \t]*/, "", statement)
      switching = statement ~ /^[ \t]*(use|create[ \t]+database|create[ \t]+schema|drop[ \t]+database|drop[ \t]+schema)([ \t`;]|$)/
      if (header) {
        if (switching && $0 ~ /;[ \t]*$/) { neutral(); next }
        if ($0 == "" || $0 ~ /^--/ || $0 ~ /^\/\*M!999999\\- enable the sandbox mode \*\/[ \t]*$/ || $0 ~ /^\/\*!40[0-9][0-9][0-9] SET [^;]*\*\/;$/) { print; next }
        header = 0
      }
      if ($0 == use_live) { neutral(); next }
      if (switching) {
        printf "customer-restore: line %d of the dump switches, creates or drops a database: not imported\n", NR > "/dev/stderr"
        exit 3
      }
      if ($0 ~ /^\/\*!50003 CREATE\*\/ \/\*!50017 DEFINER=.*\*\/ \/\*!50003 TRIGGER /) {
        k = index($0, " FOR EACH ROW")
        if (k == 0) k = length($0) + 1
        $0 = unqualify(substr($0, 1, k - 1)) substr($0, k)
      }
      print
    }
  ' "$2" >"$3"
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
