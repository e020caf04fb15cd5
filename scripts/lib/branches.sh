# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Steps that run side by side (customer-restore: the undo point's preparation, the files'
# download, the database's download and import), each a shell function in a background
# subshell; the first failure or a signal stops the others.
#
# Reads: TMP_DIR, INTERRUPTED, and in a branch CHILD_PID, ERR_CODE, ERR_MESSAGE (common.sh).
# Sets: BRANCH_PIDS (name -> pid of each running branch; common.sh's on_signal forwards a
#   SIGTERM/SIGINT to them); in a branch, its own TMP_DIR ($TMP_DIR/branch-<name>) and
#   common.sh's globals afresh.

# start_branch <name> <command...>: runs a shell function in a background
# subshell with its own TMP_DIR ($TMP_DIR/branch-<name>), its own signal
# forwarding to its children, and its outcome (status, error code, message)
# written to a file when it ends. A branch emits its own events (one line per
# write, so lines never interleave). Branches inherit the customer lock (fd 9):
# even a branch orphaned by a SIGKILL of the script keeps the lock until it ends.
declare -A BRANCH_PIDS=()
start_branch() {
  local name=$1 dir="$TMP_DIR/branch-$1"
  shift
  rm -rf -- "$dir"
  mkdir -p -- "$dir"
  _branch_run "$dir" "$@" &
  BRANCH_PIDS[$name]=$!
}
# The body of a branch (an asynchronous function runs in its own subshell).
_branch_run() {
  TMP_DIR=$1
  shift
  BRANCH_PIDS=() CHILD_PID="" INTERRUPTED=0 ERR_CODE="" ERR_MESSAGE=""
  trap _branch_exit EXIT
  install_signal_traps
  "$@"
}
_branch_exit() {
  local rc=$?
  set +e
  trap '' TERM INT
  if [[ -n $CHILD_PID ]]; then kill -TERM "$CHILD_PID" 2>/dev/null; _wait_child; fi
  if ((rc == 0)) && [[ -z $ERR_CODE && -z $ERR_MESSAGE ]]; then
    # Success, the usual end: the bytes jq -nc gives, without starting one.
    printf '{"rc":0,"code":"","message":""}\n' >"$TMP_DIR/outcome.tmp"
  else
    jq -nc --argjson rc "$rc" --arg c "$ERR_CODE" --arg m "$ERR_MESSAGE" \
      '{rc: $rc, code: $c, message: $m}' >"$TMP_DIR/outcome.tmp"
  fi && mv -- "$TMP_DIR/outcome.tmp" "$TMP_DIR/outcome"
  exit "$rc"
}

# branch_wait <name>: returns once that branch has ended well. If any branch
# fails first, or a signal arrives, every other branch is stopped (SIGTERM) and
# waited for, and the script dies with the failed branch's error.
branch_wait() {
  local target=$1 name pid
  while [[ -n ${BRANCH_PIDS[$target]:-} ]]; do
    # Wakes up when any branch ends (or a trapped signal arrives); the outcome
    # files, not wait's status, say how each ended.
    wait -n "${BRANCH_PIDS[@]}" 2>/dev/null || true
    if ((INTERRUPTED)); then
      stop_branches
      check_interrupted
    fi
    for name in "${!BRANCH_PIDS[@]}"; do
      pid=${BRANCH_PIDS[$name]}
      kill -0 "$pid" 2>/dev/null && continue
      wait "$pid" 2>/dev/null || true
      unset "BRANCH_PIDS[$name]"
      _branch_outcome "$name"
    done
  done
}
_branch_outcome() {
  local name=$1 file="$TMP_DIR/branch-$1/outcome" rc code message
  if [[ ! -f $file ]]; then
    # Killed before it could say anything.
    stop_branches
    log "Branch $name ended without an outcome"
    check_interrupted
    exit "$EXIT_FAILED"
  fi
  local first=""
  IFS= read -r first <"$file" || true
  # rc comes first in the outcome: a branch that ended well is known without a jq.
  [[ $first == '{"rc":0,'* ]] && return 0
  rc="$(jq -r '.rc' "$file")"
  ((rc == 0)) && return 0
  code="$(jq -r '.code' "$file")"
  message="$(jq -r '.message' "$file")"
  stop_branches
  log "Branch $name failed ($rc)"
  if [[ -n $code ]]; then die "$code" "$rc" "$message"; fi
  check_interrupted
  exit "$rc"
}

# stop_branches: SIGTERM to every running branch, then wait until each has ended.
stop_branches() {
  local name pid
  for pid in "${BRANCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for name in "${!BRANCH_PIDS[@]}"; do
    pid=${BRANCH_PIDS[$name]}
    INTERRUPTED=1 _wait_pid "$pid" || true
    unset "BRANCH_PIDS[$name]"
  done
}
