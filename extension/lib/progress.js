// Index progress in words: one reading of the daemon's IndexProgress events for the album cards and the grid's
// status line. Pure functions, for unit tests.

// The daemon's `phase` names, as a user would say them.
export const PHASE_WORDS = Object.freeze({
  idle: 'Idle',
  queued: 'Waiting for another job to finish',
  scanning: 'Looking for new and changed files',
  removing: 'Removing deleted files from the index',
  loading_model: 'Loading the image model (about a minute the first time)',
  embedding: 'Reading images',
  optimizing: 'Tidying the index',
  swapping: 'Switching to the new index',
  mapping: 'Placing images on the map',
  done: 'Done',
});

export const ACTIVE_STATES = new Set(['queued', 'running', 'starting']); // 'starting': asked for, not answered yet

export const isActive = (event) => Boolean(event) && ACTIVE_STATES.has(event.state);

export const isFinal = (event) => Boolean(event) && ['done', 'failed', 'cancelled'].includes(event.state);

const plural = (n, word) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

/** What a finished run did, in words: "Nothing new to index", "12 new, 3 removed", … */
export function doneText(event) {
  const { new: found = 0, changed: altered = 0, removed = 0, skipped_count: skipped = 0 } = event;
  // A file that can't be read is found as new (or changed) by every scan, then skipped: don't count it as indexed.
  const changed = Math.max(0, altered - Math.max(0, skipped - found));
  const added = Math.max(0, found - skipped);
  if (!added && !changed && !removed) return skipped ? `Nothing new to index (${plural(skipped, 'file')} skipped)` : 'Nothing new to index';
  const parts = [];
  if (added) parts.push(`${added.toLocaleString('en-US')} new`);
  if (changed) parts.push(`${changed.toLocaleString('en-US')} changed`);
  if (removed) parts.push(`${removed.toLocaleString('en-US')} removed`);
  if (skipped) parts.push(`${skipped.toLocaleString('en-US')} skipped`);
  return `Done: ${parts.join(', ')}`;
}

/** "Reading images 40/120 (12.5/s, ~6 s left)"; counts only once the phase has them (never "0/0"). */
export function progressText(event) {
  if (event.state === 'failed') return `Failed: ${event.message || 'no details'}`;
  if (event.state === 'cancelled') return `Cancelled${event.message ? `: ${event.message}` : ''}; what was indexed is kept`;
  if (event.state === 'done') return doneText(event);
  if (event.state === 'idle') return 'Idle';
  if (event.state === 'starting') return event.mode === 'rebuild' ? 'Starting rebuild…' : 'Starting update…';
  if (event.state === 'queued') return PHASE_WORDS.queued;
  const words = PHASE_WORDS[event.phase] || 'Indexing';
  if (!(event.total > 0)) return `${words}…`;
  const extra = [];
  if (event.rate) extra.push(`${event.rate.toFixed(1)}/s`);
  if (event.eta_s != null && event.state === 'running') extra.push(`~${Math.ceil(event.eta_s)} s left`);
  const counts = `${words} ${event.done.toLocaleString('en-US')}/${event.total.toLocaleString('en-US')}`;
  return extra.length ? `${counts} (${extra.join(', ')})` : counts;
}

/** The bar's value; null while the phase has no counts (the bar is then indeterminate, not "0 %"). */
export function progressPercent(event) {
  if (event.state === 'done') return 100;
  return event.total > 0 ? Math.min(100, Math.round((100 * event.done) / event.total)) : null;
}
