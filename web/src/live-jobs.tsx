import { createSubscription } from '@urql/solid';
import { createContext, createSignal, type JSX, useContext } from 'solid-js';
import { createStore, reconcile } from 'solid-js/store';
import { type Notice, Notices } from './components/Notices';
import { isActive, isTerminal, jobOutcome } from './format';
import { CustomerJobsSubscription, type Job } from './graphql/documents';
import type { LiveJobs } from './jobs';

export interface LiveJobsValue {
  /** The newest state of every job that changed since the last full load. */
  live: LiveJobs;
  /** A job's new state, from the subscription or from a mutation's answer. */
  jobChanged: (job: Job) => void;
  /** A page saw this job active in a full load: its end is news. */
  sawActive: (id: string) => void;
  /** After a full load, which already holds every change seen so far. */
  forgetLive: () => void;
  onJobEnded: (listener: (job: Job) => void) => () => void;
  notices: () => readonly Notice[];
  notify: (text: string, tone: Notice['tone']) => void;
  dismiss: (id: number) => void;
}

const LiveJobsContext = createContext<LiveJobsValue>();

export function useLiveJobs(): LiveJobsValue {
  const value = useContext(LiveJobsContext);
  if (!value) throw new Error('LiveJobsProvider is missing');
  return value;
}

/**
 * Follows every job of the signed-in customer for the whole session (customerJobs), whichever
 * view is open, and says what happened when one ends.
 */
export function LiveJobsProvider(props: { children: JSX.Element }) {
  const startedAt = new Date().toISOString();
  const [live, setLive] = createStore<Record<string, Job>>({});
  const [notices, setNotices] = createSignal<Notice[]>([]);
  const seenActive = new Set<string>();
  const announced = new Set<string>();
  const endedListeners = new Set<(job: Job) => void>();
  let nextNoticeId = 1;

  const notify = (text: string, tone: Notice['tone']) =>
    setNotices((list) => [...list.slice(-2), { id: nextNoticeId++, text, tone }]);

  const jobChanged = (job: Job) => {
    // Read before the update: store objects change in place.
    const previous = live[job.id];
    const wasActive = previous !== undefined && isActive(previous);
    const previousUndo = previous?.safetySnapshot?.id ?? null;
    if (wasActive) seenActive.add(job.id);
    setLive(job.id, reconcile(job));
    if (isActive(job)) {
      seenActive.add(job.id);
      return;
    }
    if (!isTerminal(job)) return;
    if (announced.has(job.id)) {
      // A restore's undo point is stored just after the switch-over, once the job is done
      // already: the lists change again.
      if (job.safetySnapshot && job.safetySnapshot.id !== previousUndo) {
        for (const listener of endedListeners) listener(job);
      }
      return;
    }
    announced.add(job.id);
    // A job that ended before this session began is history, not news.
    if (seenActive.has(job.id) || (job.finishedAt ?? job.createdAt) >= startedAt) {
      notify(jobOutcome(job), job.status === 'COMPLETED' ? 'success' : 'error');
    }
    for (const listener of endedListeners) listener(job);
  };

  createSubscription({ query: CustomerJobsSubscription }, (_previous, data) => {
    jobChanged(data.customerJobs);
    return data;
  });

  const value: LiveJobsValue = {
    live,
    jobChanged,
    sawActive: (id) => seenActive.add(id),
    forgetLive: () => setLive(reconcile({} as LiveJobs)),
    onJobEnded(listener) {
      endedListeners.add(listener);
      return () => endedListeners.delete(listener);
    },
    notices,
    notify,
    dismiss: (id) => setNotices((list) => list.filter((notice) => notice.id !== id)),
  };

  return <LiveJobsContext.Provider value={value}>{props.children}</LiveJobsContext.Provider>;
}

/** The messages about jobs that ended and actions that failed, shown on every view. */
export function LiveNotices() {
  const jobs = useLiveJobs();
  return <Notices notices={jobs.notices()} onDismiss={jobs.dismiss} />;
}
