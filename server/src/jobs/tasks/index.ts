import type { JobKind } from '../job.entity.js';
import { backupTask } from './backup.task.js';
import { restoreTask } from './restore.task.js';
import type { Task } from './task.js';

/** Every kind of job: a new kind is a task file and a line here. */
const TASKS: Record<JobKind, Task> = {
  backup: backupTask,
  restore: restoreTask,
};

export function taskFor(kind: JobKind): Task {
  return TASKS[kind];
}
