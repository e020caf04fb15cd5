# shellcheck shell=bash
# shellcheck disable=SC2034
# A drill's own database server (customer-verify): the dump is imported into a throw-away
# mariadbd of this node's binaries, started for the drill on a data folder beside its sandbox
# and removed with it, never into the server that holds the customers' live databases.
#
# Why: the import is most of a drill's CPU, and it ran inside the live server, whose threads
# no nice reaches: on a shared 2-core node the api's listing p99 went from 7 to 21 ms during a
# drill niced at 19 (bench 8). A server of the drill's own inherits the drill's nice and
# ionice, keeps the import's pages out of the live server's buffer pool, and holds nothing but
# the scratch database: the dump's SQL (run through the confined import account, as before)
# finds no other customer's data in it to reach. It listens on a socket only (no network), in
# a folder of the database server's user (0700), with FILE operations fenced into an empty
# folder and symbolic links (DATA DIRECTORY) off. Durability is off (no doublewrite, the log
# flushed once a second): it is deleted at the end either way. It takes the live server's
# settings that decide whether a dump imports (sql_mode, max_allowed_packet, character set,
# lower_case_table_names, strict mode, row format).
#
# BACKUPS_VERIFY_DB_SERVER: auto (default: own when this node has mariadbd and
# mariadb-install-db), own, or site (the scratch database in the live server, as before).
#
# Reads: CUSTOMERS_ROOT, CUSTOMER, TMP_DIR, DB_DEFAULTS_FILE. Sets: DB_HOME (set_db_home),
# SANDBOX_DB_CNF, OWN_DB (1 when the drill uses its own server).

MARIADBD_BIN=${BACKUPS_MARIADBD_BIN:-/usr/sbin/mariadbd}

# set_db_home: the server's folder for this customer's drill, beside the sandbox.
set_db_home() {
  DB_HOME="$CUSTOMERS_ROOT/.verify/customer-$CUSTOMER.db"
  SANDBOX_DB_CNF="$DB_HOME/client.cnf"
  OWN_DB=0
  case ${BACKUPS_VERIFY_DB_SERVER:-auto} in
    site) ;;
    own) OWN_DB=1 ;;
    auto) if [[ -x $MARIADBD_BIN ]] && command -v mariadb-install-db >/dev/null; then OWN_DB=1; fi ;;
    *) invalid "BACKUPS_VERIFY_DB_SERVER must be auto, own or site." ;;
  esac
}

# The database server's own user (the folder is theirs): mysql, where it exists and may pass
# through every folder above .verify (as on a node, whose sites' root nginx passes through
# too); else root, said in the log (its import account still has no FILE right, and FILE
# operations stay fenced into the server's empty folder).
db_server_user() {
  local uid gid dir="$CUSTOMERS_ROOT" mode owner group bits
  if uid="$(id -u mysql 2>/dev/null)" && gid="$(id -g mysql 2>/dev/null)"; then
    dir="$(realpath -m -- "$dir")"
    while :; do
      read -r owner group mode < <(stat -c '%u %g %a' -- "$dir") || break
      bits=$((8#$mode))
      if ! (((owner == uid && bits & 0100) || (group == gid && bits & 010) || bits & 01)); then
        break
      fi
      if [[ $dir == / ]]; then
        printf mysql
        return 0
      fi
      dir="$(dirname -- "$dir")"
    done
    log "The check's database server runs as root: the user mysql cannot reach $dir"
  fi
  printf root
}

# The pids of servers running on this customer's drill folder (also one a killed drill left,
# whose pid file may never have been written): their command line names the data folder.
# One grep over every process's arguments (-z: NUL-separated, -x: the whole argument), not one
# per process (0.25 s of a drill on a node of 300 processes). The pattern is a regular
# expression whose last letter is a bracket ("dat[a]"), so that grep's own argument, which
# holds the brackets, is not among the matches.
sandbox_db_pids() {
  local file pid pattern
  [[ -n ${DB_HOME:-} ]] || return 0
  pattern="$(printf '%s' "--datadir=$DB_HOME/dat" | sed 's/[][\.*^$]/\\&/g')[a]"
  while IFS= read -r file; do
    pid=${file#/proc/}
    pid=${pid%/cmdline}
    [[ $pid != "$$" && $pid != "$BASHPID" ]] && printf '%s\n' "$pid"
  done < <(grep -lszx -e "$pattern" /proc/[0-9]*/cmdline)
  return 0
}

# stop_sandbox_db: kills this drill's server (nothing in it is kept) and waits until it is
# gone (at most 30 s). Status 1 if it is still there.
stop_sandbox_db() {
  local -a pids=()
  mapfile -t pids < <(sandbox_db_pids)
  ((${#pids[@]})) || return 0
  kill -KILL "${pids[@]}" 2>/dev/null || true
  local until=$((SECONDS + 30))
  while ((SECONDS < until)); do
    mapfile -t pids < <(sandbox_db_pids)
    ((${#pids[@]})) || return 0
    sleep 0.1
  done
  log "The check's database server (pid ${pids[*]}) did not stop"
  return 1
}

# The live server's settings that decide whether a dump imports, as mariadbd options
# (SANDBOX_DB_OPTIONS). A live server that does not answer: the defaults (logged).
live_db_options() {
  local row
  SANDBOX_DB_OPTIONS=()
  if ! row="$(db_query "SELECT CONCAT_WS(CHAR(9), @@sql_mode, @@max_allowed_packet, @@character_set_server,
      @@collation_server, @@lower_case_table_names, @@innodb_strict_mode, @@innodb_default_row_format)" 2>/dev/null)"; then
    log "The database server's settings could not be read; the check's server uses its defaults"
    return 0
  fi
  local sql_mode packet charset collation lower strict row_format
  IFS=$'\t' read -r sql_mode packet charset collation lower strict row_format <<<"$row"
  [[ $sql_mode =~ ^[A-Z_,]*$ ]] && SANDBOX_DB_OPTIONS+=("--sql-mode=$sql_mode")
  [[ $packet =~ ^[0-9]{1,12}$ ]] && SANDBOX_DB_OPTIONS+=("--max-allowed-packet=$packet")
  [[ $charset =~ ^[a-z0-9_]{1,32}$ ]] && SANDBOX_DB_OPTIONS+=("--character-set-server=$charset")
  [[ $collation =~ ^[a-z0-9_]{1,64}$ ]] && SANDBOX_DB_OPTIONS+=("--collation-server=$collation")
  [[ $lower =~ ^[0-2]$ ]] && SANDBOX_DB_OPTIONS+=("--lower-case-table-names=$lower")
  [[ $strict =~ ^[01]$ ]] && SANDBOX_DB_OPTIONS+=("--innodb-strict-mode=$strict")
  [[ $row_format =~ ^[a-z]{1,16}$ ]] && SANDBOX_DB_OPTIONS+=("--innodb-default-row-format=$row_format")
  return 0
}

# start_sandbox_db: a new server on DB_HOME (a left one is removed first), ready for
# statements through SANDBOX_DB_CNF as its root (socket only). Runs in the drill's nice.
start_sandbox_db() {
  local user rc=0
  user="$(db_server_user)"
  stop_sandbox_db || return 1
  rm -rf -- "$DB_HOME"
  mkdir -m 0700 -- "$DB_HOME" "$DB_HOME/files"
  chown -- "$user:" "$DB_HOME" "$DB_HOME/files"
  live_db_options
  local -a common=(--datadir="$DB_HOME/data" --user="$user" --innodb-log-file-size=32M
    --skip-log-bin "${SANDBOX_DB_OPTIONS[@]}")
  run_child mariadb-install-db --no-defaults "${common[@]}" --auth-root-authentication-method=normal \
    --skip-test-db >"$TMP_DIR/sandbox-db-install.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    # (stopped with the drill: nothing to say)
    ((INTERRUPTED)) || cat -- "$TMP_DIR/sandbox-db-install.log" >&2
    return 1
  fi
  printf '[client]\nuser=root\npassword=\nhost=localhost\nprotocol=socket\nsocket=%s\n' "$DB_HOME/s.sock" >"$SANDBOX_DB_CNF"
  # Without the script's descriptors: events (3), locks (8, 9). A server left by a killed
  # drill must not hold the customer's verify lock; --recover finds it by its data folder.
  "$MARIADBD_BIN" --no-defaults "${common[@]}" --socket="$DB_HOME/s.sock" --skip-networking \
    --pid-file="$DB_HOME/mysqld.pid" --log-error="$DB_HOME/error.log" \
    --secure-file-priv="$DB_HOME/files" --symbolic-links=0 --local-infile=0 --skip-name-resolve \
    --performance-schema=OFF --max-connections=20 --innodb-buffer-pool-size=128M \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    </dev/null >/dev/null 2>&1 3>&- 8>&- 9>&- &
  local pid=$! until=$((SECONDS + 60))
  while ((SECONDS < until)); do
    if DB_DEFAULTS_FILE=$SANDBOX_DB_CNF db_query "SELECT 1" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 -- "$DB_HOME/error.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  log "The check's database server did not start within 60 s"
  return 1
}
