import { Command } from 'commander';
import { catalogCommands } from '../cli/catalog.js';
import { customerCommands } from '../cli/customers.js';
import { dailyCommands } from '../cli/daily.js';
import { databaseCommands } from '../cli/database.js';
import { jobCommands } from '../cli/jobs.js';
import { repositoryCommands } from '../cli/repositories.js';
import { staffCommands } from '../cli/staff.js';
import { statusCommands } from '../cli/status.js';
import { tokenCommands } from '../cli/tokens.js';
import { verifyCommands } from '../cli/verify.js';

const program = new Command('backups').description('Customer backups: the operator command line');
databaseCommands(program);
customerCommands(program);
tokenCommands(program);
jobCommands(program);
dailyCommands(program);
catalogCommands(program);
repositoryCommands(program);
statusCommands(program);
staffCommands(program);
verifyCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
