import { SCRIPT_EXIT, type ScriptResult } from '../../executors/script-runner.js';
import { customerMessage } from '../job-messages.js';
import type { Outcome } from './task.js';

/**
 * The end of a script that did not complete its job: the script's own error (code and the
 * words it chose for the customer), a time-out, or `fallback` when it said nothing.
 */
export function failureOf(result: ScriptResult, fallback: string): Outcome {
  if (result.timedOut) {
    return { status: 'failed', code: 'TIMED_OUT', message: customerMessage('TIMED_OUT') };
  }
  const code = result.lastError?.code ?? fallback;
  return { status: 'failed', code, message: customerMessage(code, result.lastError?.message) };
}

export const succeeded = (result: ScriptResult) =>
  result.exitCode === SCRIPT_EXIT.ok && !result.timedOut;
