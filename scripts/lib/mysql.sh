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

# db_patient <command...>: a clean-up statement (db_query, db_client ...) that outlasts a
# restart of the database server: tried again every 2 s while the server does not answer
# (client errors 2002/2003/2006/2013: no socket, refused, gone, lost), for up to
# BACKUPS_DB_WAIT_SECONDS (default 30). Without it, a scratch database, import account or
# sandbox database whose DROP met a restarting server stayed behind for good.
db_patient() {
  local limit=${BACKUPS_DB_WAIT_SECONDS:-30} rc err
  [[ $limit =~ ^[0-9]{1,4}$ ]] || limit=30
  local until=$((SECONDS + limit))
  while :; do
    rc=0
    { err=$("$@" 2>&1 1>&5); } 5>&1 || rc=$?
    ((rc == 0)) && return 0
    if [[ $err =~ ERROR\ (2002|2003|2006|2013) ]] && ((SECONDS < until)); then
      sleep 2
      continue
    fi
    printf '%s\n' "$err" >&2
    return "$rc"
  done
}

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

# neutralise_dump <db> <in> <out> <hints>: the dump as the import account can read it. The
# import runs through an account with rights on the scratch database alone
# (create_import_account), so these edits are not what keeps other databases safe: whatever
# the client makes of the text, it can touch nothing else. They make a normal dump import
# there:
# - the header (before the first table or routine: mysqldump's own lines) loses its database
#   statements (dumps made with --databases, the original plan's, create and switch to
#   customer_N), and a later line that is exactly "USE `<db>`;" (repeated before the views of
#   such a dump) becomes a comment;
# - in a trigger's head (mysqldump's "/*!50003 CREATE*/ ... TRIGGER" line, up to "FOR EACH
#   ROW"), "<space>customer_N." and "<space>`customer_N`." lose the qualification, so the
#   trigger lands in the scratch database;
# - mysqldump's DEFINER clauses (triggers, events, routines, views) are removed: the import
#   account may not name another account as a definer. The definer each one named goes to
#   <hints> (kind TAB name TAB definer, as written), where db-objects.mjs reads which definer
#   to give the object when it is recreated in the live database, if that account is confined
#   to it.
# A line switching to, creating or dropping another database is left as it is: the server
# refuses it to the import account and the import stops.
# It execs awk: run it only in the background, as import_neutralised does (then $! is awk
# itself, so stopping it stops the filter, not a subshell that would leave awk behind).
neutralise_dump() {
  LC_ALL=C exec awk -v db="$1" -v hints="$4" '
    BEGIN {
      header = 1; use_live = "USE `" db "`;"; plain = " " db "."; quoted = " `" db "`."
      def = "`([^`]|``)*`@`([^`]|``)*`"
      name = "(`([^`]|``)+`|[A-Za-z0-9_$]+)(\\.(`([^`]|``)+`|[A-Za-z0-9_$]+))?"
      trigger = "^/\\*!50003 CREATE\\*/ /\\*!50017 DEFINER=" def "\\*/ /\\*!50003 TRIGGER "
      event = "^/\\*!50106 CREATE\\*/ /\\*!50117 DEFINER=" def "\\*/ /\\*!50106 EVENT "
      routine = "^CREATE DEFINER=" def " (PROCEDURE|FUNCTION|AGGREGATE FUNCTION) "
      view_definer = "^/\\*!50013 DEFINER=" def " SQL SECURITY (DEFINER|INVOKER) \\*/[ \\t]*$"
      view_name = "^/\\*!50001 VIEW "
      printf "" > hints
    }
    function neutral() { print "-- (neutralised by customer-restore)" }
    # A row of a multi-row INSERT (mariadb-dump writes one a line: "(1,...),") or an INSERT
    # line: nothing below applies to it (no rule matches a line starting so), only that it
    # ends the header and any pending view. Most of a dump'"'"'s bytes are such lines: passed on
    # as they are, without the lower-casing and matching below (a 200 MB dump: 0.2 s instead
    # of 4-5 s of CPU, the import'"'"'s own share of it on a 2-core node).
    substr($0, 1, 1) == "(" || substr($0, 1, 12) == "INSERT INTO " { header = 0; pending_view = ""; print; next }
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
    # The definer of the line (its first backquoted user@host), and the name after <head>.
    function definer_of(line) { match(line, def); return substr(line, RSTART, RLENGTH) }
    function hint(kind, rest, definer) {
      if (match(rest, "^" name)) printf "%s\t%s\t%s\n", kind, substr(rest, 1, RLENGTH), definer > hints
    }
    # <keep> followed by what comes after the match of <head> (whose definer is removed).
    function strip(head, keep, kind,   definer, rest) {
      definer = definer_of($0)
      match($0, head)
      rest = substr($0, RLENGTH + 1)
      hint(kind, rest, definer)
      return keep rest
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
      if (pending_view != "") {
        if ($0 ~ view_name) hint("VIEW", substr($0, length("/*!50001 VIEW ") + 1), pending_view)
        pending_view = ""
      }
      if ($0 ~ trigger) {
        $0 = strip(trigger, "/*!50003 CREATE*/ /*!50003 TRIGGER ", "TRIGGER")
        k = index($0, " FOR EACH ROW")
        if (k == 0) k = length($0) + 1
        $0 = unqualify(substr($0, 1, k - 1)) substr($0, k)
      } else if ($0 ~ event) {
        $0 = strip(event, "/*!50106 CREATE*/ /*!50106 EVENT ", "EVENT")
      } else if ($0 ~ routine) {
        kind = $0; sub("^CREATE DEFINER=" def " ", "", kind); sub(/ .*/, "", kind)
        if (kind == "AGGREGATE") kind = "AGGREGATE FUNCTION"
        $0 = strip(routine, "CREATE " kind " ", "ROUTINE")
      } else if ($0 ~ view_definer) {
        pending_view = definer_of($0)
        security = $0; sub(/^.* SQL SECURITY /, "", security); sub(/ .*/, "", security)
        $0 = "/*!50013 SQL SECURITY " security " */"
      }
      print
    }
  ' "$2" >"$3"
}

# A complete mysqldump output ends with this comment; a truncated one does not.
dump_is_complete() { tail -c 4096 "$1" | grep -q -- '-- Dump completed'; }

# The restore's import account: customer_N's scratch database and nothing else (no global
# privilege, no other database), a random password in an option file of TMP_DIR (0600),
# made just before the import and dropped right after it; remove_import_account also runs
# whenever a restore is cleaned up or recovered, so a killed import leaves no account behind.
# It signs in from where the worker's own account does (the host part of CURRENT_USER()).
# IMPORT_ACCOUNT_PREFIX names it per script (customer-verify: backups_verify), so a drill and
# a restore of one customer never drop each other's account.
import_account() { printf '%s_%s' "${IMPORT_ACCOUNT_PREFIX:-backups_restore}" "$CUSTOMER"; }
create_import_account() {
  local db=$1 user password
  user=$(import_account)
  password=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
  remove_import_account
  # On stdin: a password in argv is in every local user's process list.
  db_client --batch <<<"SET @host = SUBSTRING_INDEX(CURRENT_USER(), '@', -1);
    SET @account = CONCAT(QUOTE('$user'), '@', QUOTE(@host));
    SET @s = CONCAT('CREATE USER ', @account, ' IDENTIFIED BY ', QUOTE('$password'));
    PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;
    SET @s = CONCAT('GRANT ALL PRIVILEGES ON \`', REPLACE('$db', '_', '\\\\_'), '\`.* TO ', @account);
    PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;" || return 1
  IMPORT_DEFAULTS_FILE="$TMP_DIR/import.cnf"
  # The worker's settings (socket or host, port, TLS), then this account's name and password.
  printf '!include %s\n[client]\nuser=%s\npassword=%s\n' "$DB_DEFAULTS_FILE" "$user" "$password" >"$IMPORT_DEFAULTS_FILE"
}
# Its status is the DROP USER's: a caller that keeps its journal on failure must see it.
remove_import_account() {
  local rc=0
  db_patient db_client --batch -e "SET @s = (SELECT CONCAT('DROP USER ', GROUP_CONCAT(CONCAT(QUOTE(User), '@', QUOTE(Host))))
      FROM mysql.global_priv WHERE User = '$(import_account)');
    SET @s = COALESCE(@s, 'DO 0'); PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;" || rc=$?
  if [[ -n ${IMPORT_DEFAULTS_FILE:-} ]]; then rm -f -- "$IMPORT_DEFAULTS_FILE"; fi
  return "$rc"
}

# import_dump <db> <file>: the dump through the import account (create_import_account).
# The client's errors are also kept in $TMP_DIR/import.err.
import_dump() {
  local db=$1 file=$2 rc=0
  run_child_stdin "$file" mariadb --defaults-extra-file="$IMPORT_DEFAULTS_FILE" --binary-mode \
    --default-character-set=utf8mb4 "$db" 2>"$TMP_DIR/import.err" || rc=$?
  cat -- "$TMP_DIR/import.err" >&2
  return "$rc"
}
# import_neutralised <db> <live db> <dump> <fifo> <hints>: the dump through neutralise_dump,
# streamed by a fifo into import_dump (no copy on disk); fails if either failed (IMPORT_RC:
# the client's exit status, above 128 when a signal ended it). An import
# that stopped, even before it opened the pipe (a signal between its fork and its open), lets
# the filter go: it is stopped and given a reader, never left blocked on the pipe, which would
# hold the script's output and the customer's lock after the script had gone.
IMPORT_RC=0
import_neutralised() {
  local db=$1 live=$2 dump=$3 fifo=$4 hints=$5 rc=0 filter_rc=0 filter unblock
  rm -f -- "$fifo"
  mkfifo -m 0600 -- "$fifo"
  neutralise_dump "$live" "$dump" "$fifo" "$hints" 3>&- &
  filter=$!
  import_dump "$db" "$fifo" || rc=$?
  IMPORT_RC=$rc
  if ((rc != 0)); then
    kill -TERM "$filter" 2>/dev/null || true
    # opening a fifo read-write never blocks: a writer still waiting for a reader has one
    exec {unblock}<>"$fifo"
    exec {unblock}<&-
  fi
  _wait_pid "$filter" || filter_rc=$?
  rm -f -- "$fifo"
  ((rc == 0 && filter_rc == 0))
}

# True when the server refused the import account something outside the scratch database.
import_reached_outside() { grep -q "denied to user '$(import_account)'" -- "$TMP_DIR/import.err" 2>/dev/null; }

# SQL returning one DROP statement per view/trigger/routine/event of a database.
# Views and triggers cannot follow their tables across databases in a RENAME
# TABLE, so they (and routines/events, to restore the database exactly) are
# dropped around the swap and recreated (save_objects, apply_objects).
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

# The objects' text never goes through the client (db-objects.mjs says why).
db_objects() { run_child "${BACKUPS_NODE_BIN:-node}" "$LIB_DIR/db-objects.mjs" "$@"; }
# save_objects <db> <file.json>: every view, trigger, routine and event of <db>.
save_objects() { db_objects save "$DB_DEFAULTS_FILE" "$1" "$2"; }
# apply_objects <db> <file.json> [--hints FILE | --exact]: recreates them in <db>.
apply_objects() {
  local db=$1 file=$2
  shift 2
  db_objects apply "$DB_DEFAULTS_FILE" "$db" "$file" --customer "$CUSTOMER" "$@"
}

# dump_objects <db> <file>: routines+events, then views, then triggers, as
# mysqldump writes them (unqualified), for the undo point's dump. That file is only ever
# read by a later restore, through its import account.
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
