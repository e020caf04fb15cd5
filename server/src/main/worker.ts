import { config } from '../config/config.js';
import { createLogger } from '../infra/logger.js';
import { startWorker } from '../worker/worker.js';

const cfg = config();
const logger = createLogger('worker', cfg.BACKUPS_LOG_LEVEL);
const worker = await startWorker({ config: cfg, logger });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info({ signal }, 'stopping');
    void worker.stop().then(() => process.exit(0));
  });
}
