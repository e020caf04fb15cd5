# Every customer's retention of one kind in a shared repository, from one `restic snapshots
# --json` listing, so the maintainer forgets the snapshots of thousands of customers in a few
# `restic forget <ids>` calls (each takes the exclusive lock and reads every snapshot file)
# instead of one call per customer. restic cannot group so itself: its --group-by tags
# groups by the whole tag set, and every manual snapshot has its own (job-N, label:...).
#
# The policy is restic's own, as apply_retention asks it of one customer
# (`forget --tag customer-N,<kind> --group-by '' --keep-last N | --keep-within Nd`):
#   - a group: the snapshots with the tag <kind> and the tag customer-N (the tag the catalog
#     reads, snapshot-tags.ts); legacy daily snapshots (no customer tag) are in none;
#   - keep-last N: the N newest of the group are kept;
#   - keep-within D days: kept when newer than the group's newest minus D days (restic:
#     latest.AddDate(0, 0, -D), strictly after; a day is 86400 s, as restic counts it in UTC).
# Times are compared exactly, to the nanosecond ([seconds, nanoseconds] pairs, never floats).
# A snapshot in two customers' groups (never written so) goes only if neither keeps it.
#
# Arguments: $kind (manual|daily|safety), $last (keep-last; 0: not used), $days (keep-within
# in days; 0: not used), $chunk (most ids in one forget call).
# Output: one array per forget call, of {customer, remove: [ids]} ascending by customer;
# customers with nothing to remove are left out.

# [UTC seconds, nanoseconds] of a restic time (RFC 3339: 2026-12-03T05:58:29.547242159Z, or
# with an offset: 2026-03-29T01:30:00+01:00)
def instant:
  . as $text
  | (first(capture("^(?<base>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\\.(?<frac>[0-9]{1,9}))?(?<zone>Z|[+-][0-9]{2}:[0-9]{2})$"))
      // error("unreadable snapshot time: \($text)"))
  | (if .zone == "Z" then 0
     else ((.zone[1:3] | tonumber) * 3600 + (.zone[4:6] | tonumber) * 60)
       * (if .zone[0:1] == "+" then 1 else -1 end)
     end) as $offset
  | [((.base + "Z") | fromdateiso8601) - $offset, (((.frac // "") + "000000000")[0:9] | tonumber)];

[ .[]
  | select(any(.tags[]?; . == $kind))
  | . as $s
  | (.time | instant) as $t
  | .tags[]
  | select(test("^customer-[1-9][0-9]{0,11}$"))
  | {customer: (.[9:] | tonumber), id: $s.id, t: $t} ]
| group_by(.customer)
| map(
    # newest first (ties by id, so that a run is repeatable)
    sort_by([.t, .id]) | reverse
    | (.[0].t | [.[0] - $days * 86400, .[1]]) as $cutoff
    | to_entries
    | map(.value + {keep: (($last > 0 and .key < $last) or ($days > 0 and .value.t > $cutoff))}))
| flatten
| group_by(.id)
| map(select(all(.[]; .keep | not)) | .[] | {customer, id})
| sort_by([.customer, .id])
| [range(0; length; $chunk) as $i | .[$i:$i + $chunk]]
| .[]
| group_by(.customer)
| map({customer: .[0].customer, remove: map(.id)})
