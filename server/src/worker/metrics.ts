import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of a worker (deploy/prometheus/alerts.yml and deploy/grafana read them).
 * Every series carries the worker's `node`. Kinds, statuses and error codes are labels taken
 * from the job, so a new kind of job or a new error code appears without a change here.
 * No customer id, name or email is ever a label: customers are counted, never named.
 */
export class JobMetrics {
  readonly registry = new Registry();
  private readonly durations = new Histogram({
    name: 'backups_job_duration_seconds',
    help: 'Duration of finished jobs, from taken to finished',
    labelNames: ['kind', 'status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: 'backups_jobs_finished_total',
    help: 'Jobs finished by this worker',
    labelNames: ['kind', 'status'],
    registers: [this.registry],
  });
  private readonly failed = new Counter({
    name: 'backups_jobs_failed_total',
    help: 'Jobs this worker ended FAILED, by error code (the code the customer sees)',
    labelNames: ['kind', 'code'],
    registers: [this.registry],
  });
  private readonly verificationFailed = new Counter({
    name: 'backups_verification_failed_total',
    help: 'Restore drills that found a backup not restorable (kind drill) and repository checks that found damaged data (kind check)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly jobsByStatus = new Gauge({
    name: 'backups_jobs',
    help: 'Jobs of this node by kind and status (from the database)',
    labelNames: ['kind', 'status'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'backups_queue_depth',
    help: "Jobs in this node's queues, by lane (jobs, daily) and state",
    labelNames: ['lane', 'state'],
    registers: [this.registry],
  });
  readonly oldestPendingAge = new Gauge({
    name: 'backups_oldest_pending_job_age_seconds',
    help: "Age of this node's oldest PENDING job, by lane: jobs (asked for) or daily (scheduled); 0 when none waits",
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly dailyLastSuccess = new Gauge({
    name: 'backups_daily_last_success_timestamp_seconds',
    help: "When the node's last daily backup completed (Unix time; 0: never)",
    registers: [this.registry],
  });
  readonly customers = new Gauge({
    name: 'backups_customers',
    help: 'Customers served by this node',
    registers: [this.registry],
  });
  readonly dailyStale = new Gauge({
    name: 'backups_customers_daily_backup_stale',
    help: 'Customers of this node (older than 36 h) whose newest daily backup is older than 36 h, or who have none',
    registers: [this.registry],
  });
  readonly freeBytes = new Gauge({
    name: 'backups_filesystem_free_bytes',
    help: 'Free bytes of the filesystems restores stage on (customers: beside the sites) and the worker writes to (data)',
    labelNames: ['filesystem'],
    registers: [this.registry],
  });
  readonly sizeBytes = new Gauge({
    name: 'backups_filesystem_size_bytes',
    help: 'Size in bytes of the same filesystems',
    labelNames: ['filesystem'],
    registers: [this.registry],
  });
  private readonly lockWait = new Histogram({
    name: 'backups_lock_wait_seconds',
    help: "Time a job waited for the customer's previous script (worker) or for the customer's lock (script)",
    labelNames: ['where'],
    buckets: [0.1, 1, 5, 15, 60, 300, 900],
    registers: [this.registry],
  });
  private readonly resticExits = new Counter({
    name: 'backups_restic_exits_total',
    help: 'restic runs by the scripts, by command and exit code (10: no repository, 11: locked, 12: wrong password, 3: some files unreadable)',
    labelNames: ['command', 'code'],
    registers: [this.registry],
  });
  private readonly repositoryCheckFailed = new Counter({
    name: 'backups_repository_check_failed_total',
    help: 'Repository checks this worker ran that failed',
    labelNames: ['repository'],
    registers: [this.registry],
  });
  private readonly repositoryCheckLastSuccess = new Gauge({
    name: 'backups_repository_check_last_success_timestamp_seconds',
    help: "When this worker's last check of the repository passed (Unix time)",
    labelNames: ['repository'],
    registers: [this.registry],
  });

  constructor(node: string) {
    this.registry.setDefaultLabels({ node });
  }

  readonly repositoryCheck = new Gauge({
    name: 'backups_repository_check_ok',
    help: 'The last data check of each repository: 1 ok, 0 found a problem',
    labelNames: ['repository'],
    registers: [this.registry],
  });
  readonly repositoryCheckPacks = new Gauge({
    name: 'backups_repository_check_packs_read',
    help: 'Data packs the last check of each repository read',
    labelNames: ['repository'],
    registers: [this.registry],
  });

  observe(kind: string, status: string, seconds: number): void {
    this.durations.observe({ kind, status }, seconds);
    this.finished.inc({ kind, status });
  }

  jobFailed(kind: string, code: string): void {
    this.failed.inc({ kind, code });
  }

  /** A drill or a check found a problem (worker/alerts.ts raises it). */
  alertRaised(kind: 'drill' | 'check'): void {
    this.verificationFailed.inc({ kind });
  }

  waitedForLock(where: 'worker' | 'script', seconds: number): void {
    this.lockWait.observe({ where }, seconds);
  }

  resticExited(command: string, code: number): void {
    this.resticExits.inc({ command, code: String(code) });
  }

  repositoryChecked(repository: string, ok: boolean, at = Date.now()): void {
    if (ok) this.repositoryCheckLastSuccess.set({ repository }, at / 1000);
    else this.repositoryCheckFailed.inc({ repository });
  }
}
