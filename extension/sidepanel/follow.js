// Follows the picked album's progress stream (`?follow=1`: every later run too, watcher runs included), so the grid,
// the count and the map show images as the daemon commits them, without the user pressing Search.

import { isActive, isFinal } from '../lib/progress.js';

const RETRY_MS = 3000; // the stream dropped (daemon restart, sleep): try again after a pause, not in a tight loop
export const REFRESH_EVERY_MS = 1500; // at most this often the grid re-asks for what is on screen during a run

/**
 * What to redraw after `event`, given the previous one: {grid, map}. The grid follows each committed batch (the
 * count changed) and each finished run; the map only finished runs (a payload per batch would cost more than it
 * shows). Pure, for unit tests.
 */
export function refreshFor(previous, event) {
  if (previous == null) return { grid: false, map: false }; // the stream's first event: the panel just loaded all
  const countChanged = event.indexed_count != null && event.indexed_count !== previous.indexed_count;
  const finished = isFinal(event) && (isActive(previous) || previous.run_id !== event.run_id);
  return { grid: countChanged || finished, map: finished };
}

export class AlbumFollower {
  /**
   * @param {() => any} getDaemon
   * @param {{onProgress: (event) => void, onRefresh: (what: {grid: boolean, map: boolean}) => void}} hooks
   */
  constructor(getDaemon, { onProgress, onRefresh }) {
    this.getDaemon = getDaemon;
    this.onProgress = onProgress;
    this.onRefresh = onRefresh;
    this.controller = null;
    this.album = null;
    this.last = null;
    this.pendingGrid = null; // timer of a throttled grid refresh
    this.lastGridAt = 0;
  }

  follow(album) {
    if (album === this.album && this.controller) return;
    this.stop();
    this.album = album;
    if (album) this.loop(album, new AbortController());
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.album = null;
    this.last = null;
    clearTimeout(this.pendingGrid);
    this.pendingGrid = null;
  }

  async loop(album, controller) {
    this.controller = controller;
    const path = `/albums/${encodeURIComponent(album)}/progress?follow=1`;
    while (!controller.signal.aborted) {
      try {
        for await (const event of this.getDaemon().events(path, controller.signal)) this.take(event);
      } catch (err) {
        if (controller.signal.aborted || (err && err.name === 'AbortError')) return;
        if (err && err.status === 404) return; // the album was deleted
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  take(event) {
    const what = refreshFor(this.last, event);
    this.last = event;
    this.onProgress(event);
    if (what.map || (what.grid && isFinal(event))) {
      clearTimeout(this.pendingGrid);
      this.pendingGrid = null;
      this.lastGridAt = Date.now();
      this.onRefresh(what);
    } else if (what.grid && !this.pendingGrid) {
      const wait = Math.max(0, this.lastGridAt + REFRESH_EVERY_MS - Date.now());
      this.pendingGrid = setTimeout(() => {
        this.pendingGrid = null;
        this.lastGridAt = Date.now();
        this.onRefresh({ grid: true, map: false });
      }, wait);
    }
  }
}
