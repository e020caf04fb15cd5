import { AuditEvent } from '../audit/audit-event.entity.js';
import { ApiToken } from '../auth/api-token.entity.js';
import { Session } from '../auth/session.entity.js';
import { Customer } from '../customers/customer.entity.js';
import { Download } from '../downloads/download.entity.js';
import { BackupJob } from '../jobs/job.entity.js';
import { Snapshot } from '../snapshots/snapshot.entity.js';
import { SnapshotVerification } from '../snapshots/verification.entity.js';
import { StaffAccount } from '../staff/staff-account.entity.js';
import { Webhook, WebhookAttempt, WebhookMessage } from '../webhooks/webhook.entity.js';

export const entities = [
  Customer,
  BackupJob,
  Snapshot,
  ApiToken,
  Session,
  AuditEvent,
  Webhook,
  WebhookMessage,
  WebhookAttempt,
  StaffAccount,
  SnapshotVerification,
  Download,
];
