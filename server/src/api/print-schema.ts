import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../config/paths.js';
import { printSchema } from '../graphql/graphql-runtime.js';
import { apiSchema } from './schema.js';

export const schemaFile = path.join(projectRoot, 'schema/schema.graphql');

const HEADER =
  '# The GraphQL contract of the customer backups api. Generated from the Pothos schema in\n' +
  '# server/src: do not edit; run `pnpm --filter @backups/server print-schema`.\n\n';

/** The schema as SDL, exactly as written to schema/schema.graphql. */
export function printedSchema(): string {
  return `${HEADER}${printSchema(apiSchema())}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeFileSync(schemaFile, printedSchema());
  console.log(`wrote ${path.relative(process.cwd(), schemaFile)}`);
}
