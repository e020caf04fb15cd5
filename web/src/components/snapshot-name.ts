import { formatDateTime } from '../format';
import type { Snapshot } from '../graphql/documents';

/**
 * Which snapshot, in words: "the backup of 14 Mar 2026, 09:30 (manual, “Before update”)".
 * The accessible names of a row's actions use it, so a screen reader tells the rows apart.
 */
export function snapshotName(snapshot: Pick<Snapshot, 'source' | 'createdAt' | 'label'>): string {
  const what = snapshot.source === 'SAFETY' ? 'the undo point' : 'the backup';
  const details: string[] = [];
  if (snapshot.source === 'MANUAL') details.push('manual');
  if (snapshot.source === 'DAILY') details.push('daily');
  if (snapshot.label) details.push(`“${snapshot.label}”`);
  const extra = details.length > 0 ? ` (${details.join(', ')})` : '';
  return `${what} of ${formatDateTime(snapshot.createdAt)}${extra}`;
}
