import { InvalidInputError } from '../graphql/errors.js';

export const PATHS_MAX = 1000;
export const PATH_MAX_BYTES = 4096;

/**
 * The paths of a download (or a partial restore), as the customer named them: relative to the
 * site's content folder, each at most 4,096 bytes, at most 1,000 of them, no NUL or line break,
 * no empty, `.` or `..` part (so nothing can name a place outside the site), duplicates
 * and paths inside another chosen one removed. A trailing slash is dropped. The one place these rules are written in TypeScript
 * (scripts/customer-download checks them again); whether each path is in the snapshot is the
 * worker's to tell (the index, once there, will tell it here).
 */
export function validatePaths(paths: readonly string[]): string[] {
  if (paths.length > PATHS_MAX) {
    throw new InvalidInputError(`Choose at most ${PATHS_MAX} files or folders.`, 'paths');
  }
  const seen = new Set<string>();
  for (const raw of paths) {
    const path = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw;
    const shown = JSON.stringify(path.slice(0, 80));
    if (Buffer.byteLength(path, 'utf8') > PATH_MAX_BYTES) {
      throw new InvalidInputError(`A path is at most ${PATH_MAX_BYTES} bytes long.`, 'paths');
    }
    if (path === '' || /[\0\n\r]/.test(path)) {
      throw new InvalidInputError(
        `The path ${shown} is empty or holds a control character.`,
        'paths',
      );
    }
    if (path.startsWith('/')) {
      throw new InvalidInputError(`The path ${shown} must be relative to the site.`, 'paths');
    }
    if (path.split('/').some((part) => part === '' || part === '.' || part === '..')) {
      throw new InvalidInputError(
        `The path ${shown} must not have empty, "." or ".." parts.`,
        'paths',
      );
    }
    if (!path.isWellFormed()) {
      throw new InvalidInputError(`The path ${shown} is not valid text.`, 'paths');
    }
    seen.add(path);
  }
  // A path inside another chosen one is in the archive already.
  return [...seen].filter((path) => {
    const parts = path.split('/');
    return !parts.some((_, i) => i > 0 && seen.has(parts.slice(0, i).join('/')));
  });
}
