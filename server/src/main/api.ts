import { buildApp } from '../api/app.js';
import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';

const cfg = config();
const logger = createLogger('api', cfg.BACKUPS_LOG_LEVEL);
const app = buildApp({ config: cfg, logger });

await app.start();

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
