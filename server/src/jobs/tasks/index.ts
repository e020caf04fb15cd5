import type { JobKind } from '../job.entity.js';
import { backupTask } from './backup.task.js';
import { downloadTask } from './download.task.js';
import { indexTask } from './index.task.js';
import { restoreTask } from './restore.task.js';
import type { Task } from './task.js';
import { verifyTask } from './verify.task.js';

/** Every kind of job: a new kind is a task file and a line here. */
const TASKS: Partial<Record<JobKind, Task>> = {
  backup: backupTask,
  restore: restoreTask,
  verify: verifyTask,
  index: indexTask,
  download: downloadTask,
};

export function taskFor(kind: JobKind): Task {
  const task = TASKS[kind];
  if (!task) throw new Error(`no task runs ${kind} jobs`);
  return task;
}
