import type { Download, Job, Snapshot } from '../src/graphql/documents';

let sequence = 0;

export function buildSnapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  sequence += 1;
  return {
    id: `${sequence.toString(16).padStart(8, '0')}${'ab'.repeat(28)}`,
    shortId: sequence.toString(16).padStart(8, '0'),
    source: 'MANUAL',
    scope: 'BOTH',
    createdAt: '2026-03-14T09:30:00.000Z',
    label: null,
    sizeBytes: 52_428_800,
    verification: null,
    ...overrides,
  };
}

export function buildJob(overrides: Partial<Job> = {}): Job {
  sequence += 1;
  return {
    id: String(sequence),
    kind: 'BACKUP',
    scope: 'BOTH',
    source: 'MANUAL',
    status: 'RUNNING',
    phase: 'UPLOADING',
    progress: 0.42,
    bytesDone: 44_040_192,
    bytesTotal: 104_857_600,
    etaSeconds: 95,
    label: null,
    errorCode: null,
    errorMessage: null,
    createdAt: '2026-03-14T09:30:00.000Z',
    startedAt: '2026-03-14T09:30:02.000Z',
    finishedAt: null,
    snapshot: null,
    safetySnapshot: null,
    download: null,
    ...overrides,
  };
}

export function buildDownload(overrides: Partial<Download> = {}): Download {
  sequence += 1;
  return {
    id: String(sequence),
    url: `https://backups.example.com/downloads/node-1/${'A'.repeat(43)}`,
    expiresAt: '2026-03-15T09:30:00.000Z',
    sizeBytes: 1_048_576,
    sha256: 'ab'.repeat(32),
    format: 'ZIP',
    fileName: `customer_5-2026-03-14-files.zip`,
    database: false,
    paths: null,
    createdAt: '2026-03-14T09:30:00.000Z',
    ...overrides,
  };
}
