// Thumbnails fetched with the bearer header and shown through object URLs (an <img src> cannot carry a header, and
// a token in the URL would leak). A bounded LRU revokes URLs it drops; a small pool limits parallel requests so
// scrolling through 100k images never floods the daemon.

export const MAX_CACHED = 800; // ~800 x 15 KB of WebP: a few screens of scroll-back without refetching
export const MAX_PARALLEL = 6; // what Chrome allows per host over HTTP/1.1 anyway

export class ThumbCache {
  constructor(getDaemon) {
    this.getDaemon = getDaemon;
    this.urls = new Map(); // key -> object URL, in least-recently-used order
    this.queue = []; // pending {key, path, resolve, reject, signal}
    this.active = 0;
  }

  /** Object URL for `/images/{album}/{id}/thumb`; rejects with AbortError when `signal` aborts first. */
  get(album, id, signal) {
    const key = `${album}/${id}`;
    const cached = this.urls.get(key);
    if (cached) {
      this.urls.delete(key);
      this.urls.set(key, cached);
      return Promise.resolve(cached);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ key, path: `/images/${encodeURIComponent(album)}/${id}/thumb`, resolve, reject, signal });
      this.pump();
    });
  }

  pump() {
    while (this.active < MAX_PARALLEL && this.queue.length > 0) {
      const job = this.queue.pop(); // newest first: the cells on screen now, not those scrolled past
      if (job.signal && job.signal.aborted) {
        job.reject(new DOMException('aborted', 'AbortError'));
        continue;
      }
      this.active += 1;
      this.fetch(job).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  async fetch(job) {
    try {
      const blob = await this.getDaemon().blob(job.path, job.signal);
      const url = this.urls.get(job.key) || URL.createObjectURL(blob);
      this.remember(job.key, url);
      job.resolve(url);
    } catch (err) {
      job.reject(err);
    }
  }

  remember(key, url) {
    this.urls.delete(key);
    this.urls.set(key, url);
    while (this.urls.size > MAX_CACHED) {
      const [oldKey, oldUrl] = this.urls.entries().next().value;
      this.urls.delete(oldKey);
      URL.revokeObjectURL(oldUrl);
    }
  }

  clear() {
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}
