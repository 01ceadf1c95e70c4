// The one client for the local daemon's API. Every request goes through `Daemon.request`, which adds the bearer
// header: the token never appears in a URL (URLs end up in history, logs and Referer headers).

import { CONNECTION, MSG, SESSION } from './messages.js';

export const API_PREFIX = '/api/v1';

/** A failed API call: `status` 0 means the daemon could not be reached at all. */
export class DaemonError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'DaemonError';
    this.status = status;
    this.code = code;
  }

  get isUnreachable() {
    return this.status === 0;
  }
}

export class Daemon {
  /**
   * @param {{port: number, token: string}} connection
   * @param {{onLost?: () => void}} [hooks]  onLost: the daemon stopped answering or refused the token (it may
   *   have restarted on another port or with a new token), so the caller can ask the native host again
   */
  constructor({ port, token }, hooks = {}) {
    this.base = `http://127.0.0.1:${port}${API_PREFIX}`;
    this.token = token;
    this.onLost = hooks.onLost || (() => {});
  }

  /**
   * @param {string} method
   * @param {string} path  e.g. `/albums/photos/search`
   * @param {{json?: unknown, body?: BodyInit, contentType?: string, signal?: AbortSignal, headers?: object,
   *          cache?: RequestCache}} [opts]  `cache` defaults to no-store: API answers change under the same URL
   * @returns {Promise<Response>} an ok response; errors become DaemonError with the daemon's message
   */
  async request(method, path, opts = {}) {
    const headers = { Authorization: `Bearer ${this.token}`, ...(opts.headers || {}) };
    let body = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['Content-Type'] = 'application/json';
    } else if (opts.contentType) {
      headers['Content-Type'] = opts.contentType;
    }
    let response;
    try {
      const cache = opts.cache || 'no-store';
      response = await fetch(this.base + path, { method, headers, body, signal: opts.signal, cache });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      this.onLost();
      throw new DaemonError(0, 'unreachable', 'The PhotoMap daemon is not answering');
    }
    if (response.ok || response.status === 304) return response;
    if (response.status === 401) this.onLost();
    throw await errorFrom(response);
  }

  async json(method, path, json, signal) {
    const response = await this.request(method, path, { json, signal });
    if (response.status === 204) return null;
    return response.json();
  }

  get(path, signal) {
    return this.json('GET', path, undefined, signal);
  }

  post(path, json, signal) {
    return this.json('POST', path, json ?? {}, signal);
  }

  put(path, json) {
    return this.json('PUT', path, json);
  }

  patch(path, json) {
    return this.json('PATCH', path, json);
  }

  delete(path) {
    return this.json('DELETE', path);
  }

  /** POST raw bytes (an image) with their content type. */
  async postBytes(path, blob) {
    const response = await this.request('POST', path, {
      body: blob,
      contentType: blob.type || 'application/octet-stream',
    });
    return response.json();
  }

  /** Image bytes; the browser's HTTP cache may revalidate them with the daemon's ETag (thumbnails rarely change). */
  async blob(path, signal) {
    const response = await this.request('GET', path, { signal, cache: 'no-cache' });
    return response.blob();
  }

  /** POST a JSON body and take the answer as bytes (a zip of a selection). */
  async postBlob(path, json) {
    const response = await this.request('POST', path, { json });
    return response.blob();
  }

  /**
   * Server-sent events read with fetch, because EventSource cannot send the Authorization header.
   * Yields each event's parsed `data:` JSON until the stream ends or `signal` aborts.
   */
  async *events(path, signal) {
    const response = await this.request('GET', path, { signal, headers: { Accept: 'text/event-stream' } });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += value;
        let cut;
        while ((cut = buffered.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffered.slice(0, cut);
          buffered = buffered.slice(cut).replace(/^\r?\n\r?\n/, '');
          const data = parseEventBlock(block);
          if (data !== undefined) yield data;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

/** The `data:` lines of one SSE block as JSON (undefined for comments/keep-alives). Exported for unit tests. */
export function parseEventBlock(block) {
  const lines = block
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).replace(/^ /, ''));
  if (lines.length === 0) return undefined;
  try {
    return JSON.parse(lines.join('\n'));
  } catch {
    return undefined;
  }
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = `The daemon answered ${response.status} ${response.statusText}`.trim();
  try {
    const payload = await response.json();
    if (payload && payload.error) {
      code = payload.error.code || code;
      message = payload.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new DaemonError(response.status, code, message);
}

/** The connection record the service worker keeps in session storage (or an empty one). */
export async function readConnection() {
  const stored = await chrome.storage.session.get(SESSION.CONNECTION);
  return stored[SESSION.CONNECTION] || { state: CONNECTION.CONNECTING };
}

/**
 * From an extension page: ask the service worker to (re)connect and return a Daemon, or null with the record
 * describing why not. The worker owns the native-host handshake and its retries.
 */
export async function connectDaemon({ refresh = false } = {}) {
  const connection = await chrome.runtime.sendMessage({ type: MSG.CONNECT, refresh });
  const daemon = connection && connection.state === CONNECTION.CONNECTED ? new Daemon(connection) : null;
  return { daemon, connection };
}
