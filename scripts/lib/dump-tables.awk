# The tables of a mysqldump/mariadb-dump file, from its own CREATE TABLE lines: one line
# "<name> TAB <bytes>" per table, in the dump's order, where <bytes> counts the table's
# INSERT statements (its data as the dump holds it; mariadb-dump may write one row a line:
# a statement ends with the line that ends in ";", as the dump escapes newlines in values).
# Run with LC_ALL=C (lengths in bytes).
# Names are backquoted in the dump with `` for a backquote; views are written as
# "/*!50001 CREATE ..." and are not tables.

function flush() {
  if (name != "") printf "%s\t%d\n", name, size
  name = ""
  size = 0
  inserting = 0
}

/^CREATE TABLE `/ {
  flush()
  rest = substr($0, 15)
  quoted = ""
  n = length(rest)
  for (i = 1; i <= n; i++) {
    c = substr(rest, i, 1)
    if (c == "`") {
      if (substr(rest, i + 1, 1) == "`") { quoted = quoted "`"; i++; continue }
      break
    }
    quoted = quoted c
  }
  if (i > n) next
  name = quoted
  insert = "INSERT INTO `" substr(rest, 1, i)
  next
}

name != "" && index($0, insert) == 1 { inserting = 1 }
inserting {
  size += length($0) + 1
  if ($0 ~ /;$/) inserting = 0
}

END { flush() }
