// The nodes of a restic listing (restic ls --json: one JSON object per line), for the node
// helpers of the scripts (restored-check.mjs, listing-bytes.mjs). restic writes only JSON
// lines there: a line that is not JSON is a listing that cannot be trusted, and the helper
// fails (exit 1) rather than skip it.
import { readFileSync } from 'node:fs';

/** Every object of the listing whose struct_type is "node", in the listing's order. */
export function* listingNodes(file) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    let n;
    try {
      n = JSON.parse(line);
    } catch {
      process.stderr.write('the listing has a line that is not JSON\n');
      process.exit(1);
    }
    if (n !== null && typeof n === 'object' && n.struct_type === 'node') yield n;
  }
}
