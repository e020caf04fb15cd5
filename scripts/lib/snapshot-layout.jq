# Where a snapshot holds a customer's content folder (wordpress/ or volumes/files/) and
# database dump (customer_N.sql), found by name (absolute paths differ between
# installations). The one statement of the rule: customer-restore reads it to know whether
# a snapshot is the customer's and what it restores from it, backup-repository members to
# know which customers a legacy daily snapshot (no customer tags) holds, so they cannot
# disagree. Loaded by snapshot-layout.sh (layout_jq).
#
# The rule reads three levels of the snapshot, each what `restic ls <snapshot> <folders...>`
# prints (each folder and its direct children), so that a snapshot of every site is never
# listed whole (list_layout lists it level by level; a snapshot tagged for one customer is
# listed once, whole, and read the same way):
#   1. the snapshot's paths ($P);
#   2. the holders: the folders of level 1 named customer-N (N's), or named as the legacy
#      dump folder is ($legacy) or dumps (anyone's);
#   3. the volumes/ folders of level 2's site folders that have no wordpress/.
# Customer N's content folder: customer-N/wordpress at level 2, else customer-N/volumes/files;
# else a folder .../customer-N/wordpress or .../customer-N/volumes/files at level 1 (an undo
# point, or a snapshot of the content folder itself). N's dump: a file customer_N.sql at
# level 1, else one in a holder of N's, never one in a site folder (a customer-N folder holding
# wordpress/ or volumes/: such a file is the site's). A snapshot holds N when it holds either.
# Names are whole names, matched on restic's JSON, never line by line (\z: Oniguruma's $
# also matches before a final newline): a folder "customer-5<newline>notes" holds nobody.
#
# $only is a customer id as the scripts validate it (a string), or null for every customer.
# layout_nodes reads restic's lines; every other function reads its array of nodes.

# "customer-N" and "customer_N.sql" give "N" (with $only set, only $only), anything else null.
def site_folder_of($only):
  if type != "string" then null
  elif $only != null then (if . == "customer-" + $only then $only else null end)
  else (capture("^customer-(?<n>[1-9][0-9]{0,11})\\z").n) // null end;
def dump_of($only):
  if type != "string" then null
  elif $only != null then (if . == "customer_" + $only + ".sql" then $only else null end)
  elif startswith("customer_") then (capture("^customer_(?<n>[1-9][0-9]{0,11})\\.sql\\z").n) // null
  else null end;

# The nodes of restic ls --json lines (jq -n) the rule reads: folders {path, dir, name,
# type: "dir"} (dir: the folder holding it) and dumps (files, with their customer and size).
# A listing made level by level repeats some, and is not in the snapshot's order.
def layout_nodes($only):
  [inputs | select(.struct_type == "node")
    | if .type == "dir" then {path, name, type}
      elif .type == "file" then (.name | dump_of($only)) as $c
        | if $c == null then empty else {path, name, type, customer: $c, size: (.size // 0)} end
      else empty end
    | .dir = (.name as $n | .path | rtrimstr("/" + $n) | if . == "" then "/" else . end)];

# Where several nodes qualify, the first in the snapshot's order wins: restic walks each
# folder's entries sorted by name, so the order of paths compared name by name.
def in_snapshot_order: sort_by(.path | split("/"));

# What `restic ls <snapshot> <folders...>` prints of these nodes.
def listed_by($folders):
  ($folders | map({key: ., value: true}) | from_entries) as $set
  | map(select($set[.path] or $set[.dir]));

# The holders (level 2's folders) of $only's (everyone's if null): {path, for} (for: the
# customer id, null when the folder can hold anyone's dump).
def holders($P; $legacy; $only):
  listed_by($P)
  | map(select(.type == "dir")
    | if .name == $legacy or .name == "dumps" then {path, for: null}
      else (.name | site_folder_of($only)) as $c | if $c == null then empty else {path, for: $c} end
      end);

# What the nodes show of each customer (of $only, if not null), each list in the snapshot's
# order:
#   dumps      {customer, path, size}: level 1's, then level 2's
#   wordpress  {customer, path, rel}: level 2's customer-N/wordpress
#   volumes    {customer, path}: level 2's customer-N/volumes (level 3 lists them)
#   files      {customer, path, rel}: those of them holding files/ (path: .../volumes/files)
#   direct     {customer, path, rel}: level 1's .../customer-N/wordpress or .../volumes/files
def evidence($P; $legacy; $only):
  . as $nodes
  | ($nodes | listed_by($P)) as $l1
  | ($nodes | holders($P; $legacy; $only) | map({key: .path, value: .for}) | from_entries) as $h
  # At level 2 for customer $c: listed with one of $c's holders.
  | def holds($folder; $c): ($h | has($folder)) and ($h[$folder] == null or $h[$folder] == $c);
    def level2($c): holds(.path; $c) or holds(.dir; $c);
  ([$nodes[] | select(.type == "dir" and (.name == "wordpress" or .name == "volumes"))
      | (.dir | split("/") | .[-1] | site_folder_of($only)) as $c
      | select($c != null) | select(level2($c)) | {customer: $c, path, name}] | in_snapshot_order) as $sites
  # A site folder (customer-N holding wordpress/ or volumes/) is the site's own, never where a
  # backup keeps its dump: a customer_N.sql in it is a file of the site (a customer's upload,
  # their own download put back), not the database.
  | ([$nodes[] | select(.type == "dir" and (.name == "wordpress" or .name == "volumes"))
      | select(.dir | split("/") | .[-1] | site_folder_of(null) != null)
      | {key: .dir, value: true}] | from_entries) as $site_folder
  | ([$sites[] | select(.name == "volumes") | {key: (.path + "/files"), value: true}] | from_entries) as $wanted
  | ([$nodes[] | select(.type == "dir" and $wanted[.path]) | {key: .path, value: true}] | from_entries) as $isdir
  | {
      dumps: (([$l1[] | select(.type == "file" and ($site_folder[.dir] | not)) | {customer, path, size}] | in_snapshot_order)
        + ([$nodes[] | select(.type == "file" and ($site_folder[.dir] | not)) | select(level2(.customer)) | {customer, path, size}] | in_snapshot_order)),
      wordpress: [$sites[] | select(.name == "wordpress") | {customer, path, rel: "wordpress"}],
      volumes: [$sites[] | select(.name == "volumes") | {customer, path}],
      files: [$sites[] | select(.name == "volumes" and $isdir[.path + "/files"])
        | {customer, path: (.path + "/files"), rel: "volumes/files"}],
      direct: ([$l1[] | select(.type == "dir" and (.name == "wordpress" or .name == "files"))
        | (.path | split("/")) as $s
        | if $s[-1] == "wordpress" then {customer: ($s[-2] | site_folder_of($only)), path, rel: "wordpress"}
          elif $s[-2] == "volumes" then {customer: ($s[-3] | site_folder_of($only)), path, rel: "volumes/files"}
          else empty end
        | select(.customer != null)] | in_snapshot_order)
    };

# The folders to list for level 2 (a holder that is one of the snapshot's paths is listed
# already), and for level 3 (given levels 1 and 2).
def level2_folders($P; $legacy; $only): holders($P; $legacy; $only) | map(.path) | unique - $P;
def level3_folders($P; $legacy; $only):
  evidence($P; $legacy; $only)
  | ([.wordpress[] | {key: .customer, value: true}] | from_entries) as $has_wordpress
  | [.volumes[] | select($has_wordpress[.customer] | not) | .path] | unique;

# Where located() may find $only's dump, from the snapshot's paths alone, before any listing
# (a drill downloads it beside its listing): a superset of the dumps it reads, each a path
# named customer_N.sql that is one of $P, in one of $P, or in a holder one of $P can hold
# (named customer-N, as $legacy, or dumps). The listing still decides which one it is, if any.
def dump_candidates($P; $legacy; $only):
  ("customer_" + $only + ".sql") as $d
  | [$P[] | (if . == "/" then "" else . end) as $p
      | ., $p + "/" + $d, $p + "/customer-" + $only + "/" + $d, $p + "/" + $legacy + "/" + $d, $p + "/dumps/" + $d]
  | map(select(split("/")[-1] == $d)) | unique;

# Customer $only's content folder and dump: {content, rel, dump, dump_size} ("" and 0 if none).
def located($P; $legacy; $only):
  evidence($P; $legacy; $only)
  | ((.wordpress + .files + .direct)[0] // {path: "", rel: ""}) as $content
  | {content: $content.path, rel: $content.rel, dump: (.dumps[0].path // ""), dump_size: (.dumps[0].size // 0)};

# The customers the snapshot holds (ids as numbers, ascending).
def members($P; $legacy):
  evidence($P; $legacy; null)
  | [(.wordpress, .files, .direct, .dumps)[] | .customer | tonumber] | unique;
