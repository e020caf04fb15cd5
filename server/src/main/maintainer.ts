/**
 * The maintainer (DESIGN.md section 13): the fourth process role, meant for the backup host.
 * It holds the full-rights repository credentials the nodes do not have (theirs are
 * append-only), and no access to sites or customer databases: it runs only
 * scripts/backup-repository. Every day at BACKUPS_MAINTAINER_AT it applies every customer's
 * retention and brings the catalog in step; on BACKUPS_MAINTAINER_PRUNE_DAY it also prunes and
 * checks the repositories. `--once` runs one full pass now and exits (non-zero on a failure).
 */
import { MikroORM } from '@mikro-orm/mariadb';
import { config } from '../config/config.js';
import { ormOptions } from '../db/orm.js';
import { ScriptRunner } from '../executors/script-runner.js';
import { createLogger } from '../infra/logger.js';
import { runMaintenance } from '../maintainer/maintenance.js';
import { perCustomerSources } from '../snapshots/catalog-sync.js';
import { nextRunAt } from '../worker/daily-schedule.js';

const cfg = config();
const logger = createLogger('maintainer', cfg.BACKUPS_LOG_LEVEL);
const orm = await MikroORM.init(ormOptions({ ...cfg, poolMax: 2 }));
const scripts = new ScriptRunner({
  scriptsDir: cfg.BACKUPS_SCRIPTS_DIR,
  prefix: cfg.BACKUPS_SCRIPT_PREFIX,
  logger,
});
const deps = { orm, scripts, logger, perCustomer: perCustomerSources(cfg) };

if (process.argv.includes('--once')) {
  const report = await runMaintenance(deps, { prune: true, check: true });
  await orm.close(true);
  const failed = report.failed.length > 0 || report.checked.some((c) => !c.ok);
  process.exit(failed ? 1 : 0);
}

let timer: NodeJS.Timeout | undefined;
let running: Promise<unknown> = Promise.resolve();
const arm = () => {
  const at = nextRunAt(cfg.BACKUPS_MAINTAINER_AT);
  logger.info({ at: at.toISOString() }, 'next maintenance pass');
  timer = setTimeout(() => {
    const weekly = at.getDay() === cfg.BACKUPS_MAINTAINER_PRUNE_DAY;
    running = runMaintenance(deps, { prune: weekly, check: weekly })
      .catch((error: unknown) => logger.error({ err: error }, 'maintenance pass failed'))
      .finally(arm);
  }, at.getTime() - Date.now());
};
arm();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info({ signal }, 'stopping after the current pass');
    if (timer) clearTimeout(timer);
    void running.finally(async () => {
      await orm.close(true);
      process.exit(0);
    });
  });
}
