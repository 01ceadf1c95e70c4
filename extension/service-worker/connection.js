// The daemon handshake: ask the native host for port + token (`hello`), keep them in session storage, retry with
// backoff. The worker can be killed whenever it idles, so nothing lives in its globals; the panel watches storage.

import { Daemon, DaemonError } from '../lib/daemon.js';
import { CONNECTION, FIX_COMMAND, NATIVE_HOST, SESSION } from '../lib/messages.js';

// Delays before each retry of `hello`: the host may be starting the daemon, which takes a few seconds on first run.
export const RETRY_DELAYS_MS = [500, 1000, 2000, 4000];

/** Chrome: "Specified native messaging host not found."; Firefox: "No such native application ...". */
export function isHostMissing(message) {
  return /not found|no such native application|forbidden/i.test(message || '');
}

async function store(record) {
  await chrome.storage.session.set({ [SESSION.CONNECTION]: record });
  return record;
}

function failure(state, message, attempt, command) {
  return { state, message, command: command || FIX_COMMAND[state], attempt };
}

/** The host answered with an error; `code` daemon_start_failed means retrying won't help (its message says why). */
export class HostError extends Error {
  constructor(reply) {
    super(reply.message || 'The native host gave no port and token');
    this.code = reply.code || null;
    this.command = reply.command || null; // the exact command line that starts this install's daemon
  }
}

/** Is this host reply final (no point retrying), e.g. serve exited or config.json is invalid? Pure, for unit tests. */
export const isStartFailure = (err) => Boolean(err) && err.code === 'daemon_start_failed';

async function hello() {
  const reply = await chrome.runtime.sendNativeMessage(NATIVE_HOST, { type: 'hello' });
  if (!reply || reply.type !== 'hello' || !reply.port || !reply.token) throw new HostError(reply || {});
  return reply;
}

/** Does the daemon answer with this port and token? (A restarted daemon may have another port or token.) */
async function isAlive(record) {
  try {
    await new Daemon(record).get('/status');
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A working connection record, or a failure record naming the fix. A stored record is reused while the daemon
 * answers; otherwise `hello` is retried with backoff (the host starts the daemon when it is down).
 */
export async function ensureConnection({ refresh = false } = {}) {
  const stored = (await chrome.storage.session.get(SESSION.CONNECTION))[SESSION.CONNECTION];
  if (!refresh && stored && stored.state === CONNECTION.CONNECTED && (await isAlive(stored))) return stored;

  let lastError = '';
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt += 1) {
    await store({ state: CONNECTION.CONNECTING, attempt });
    try {
      const reply = await hello();
      const record = { state: CONNECTION.CONNECTED, port: reply.port, token: reply.token, version: reply.version };
      if (await isAlive(record)) return store(record);
      lastError = `The daemon did not answer on port ${reply.port}`;
    } catch (err) {
      lastError = (err && err.message) || String(err);
      if (isHostMissing(lastError)) {
        return store(failure(CONNECTION.NOT_INSTALLED, 'The PhotoMap daemon is not installed for this browser.', attempt));
      }
      // the host saw serve fail (or refused to start it): say its cause now, with its exact command
      if (isStartFailure(err)) return store(failure(CONNECTION.NOT_RUNNING, err.message, attempt, err.command));
    }
    if (attempt < RETRY_DELAYS_MS.length) await sleep(RETRY_DELAYS_MS[attempt]);
  }
  return store(failure(CONNECTION.NOT_RUNNING, `The PhotoMap daemon is not running (${lastError}).`, RETRY_DELAYS_MS.length));
}

/** A Daemon client for worker-side work (context menu), or a DaemonError carrying the failure message. */
export async function workerDaemon() {
  const record = await ensureConnection();
  if (record.state !== CONNECTION.CONNECTED) {
    throw new DaemonError(0, record.state, `${record.message} Run: ${record.command}`);
  }
  return new Daemon(record);
}
