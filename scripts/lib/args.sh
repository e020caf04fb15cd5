# shellcheck shell=bash
# jq programs are single-quoted on purpose; globals are read by the sourcing scripts.
# shellcheck disable=SC2016,SC2034
# Argument validation. Every check runs before any side effect; a refusal is
# exit 2 with an INVALID_ARGUMENT event.

invalid() { die INVALID_ARGUMENT "$EXIT_INVALID" "$1"; }

# Customer ids: digits, no leading zero, at most 12 digits.
validate_customer_id() {
  [[ $1 =~ ^[1-9][0-9]{0,11}$ ]] || invalid "The customer id must be a number."
}
# Snapshot ids (or unambiguous prefixes): 8 to 64 lowercase hex digits.
validate_snapshot_id() {
  [[ $1 =~ ^[0-9a-f]{8,64}$ ]] || invalid "The snapshot id is not valid."
}
# Scopes: db | files | both, the same words in the arguments, the tags and the restore
# journal (the worker translates its own). What a scope covers is said here only.
is_scope() { case $1 in db | files | both) ;; *) return 1 ;; esac; }
validate_scope() { is_scope "$1" || invalid "The scope must be db, files or both."; }
wants_files() { [[ $1 != db ]]; }
wants_db() { [[ $1 != files ]]; }
validate_job_id() {
  [[ $1 =~ ^[A-Za-z0-9_-]{1,64}$ ]] || invalid "The job id is not valid."
}
# Labels: 1..200 characters, valid UTF-8, no control characters.
validate_label() {
  local label=$1
  ((${#label} >= 1 && ${#label} <= 200)) || invalid "The label must be 1 to 200 characters long."
  [[ $label =~ [[:cntrl:]] ]] && invalid "The label must not contain control characters."
  if ! printf '%s' "$label" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then
    invalid "The label is not valid text."
  fi
  return 0
}

# Labels travel as a restic tag "label:<base64url without padding>": restic
# tags cannot hold commas and are split on them, base64url round-trips any text.
label_tag() {
  printf 'label:%s' "$(printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '=')"
}
