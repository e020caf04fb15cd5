import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of a worker: jobs by status, durations, queue depth. */
export class JobMetrics {
  readonly registry = new Registry();
  private readonly durations = new Histogram({
    name: 'backups_job_duration_seconds',
    help: 'Duration of finished jobs',
    labelNames: ['kind', 'status'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200],
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: 'backups_jobs_finished_total',
    help: 'Jobs finished by this worker',
    labelNames: ['kind', 'status'],
    registers: [this.registry],
  });
  readonly jobsByStatus = new Gauge({
    name: 'backups_jobs',
    help: 'Jobs of this node by status (from the database)',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'backups_queue_depth',
    help: 'Jobs waiting in this node queue',
    labelNames: ['state'],
    registers: [this.registry],
  });

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
}
