import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The project's root folder (where package.json, scripts/ and data/ live). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
