// Virtualized thumbnail grid: only the rows in view (plus a margin) exist in the DOM, and results are fetched a
// page at a time as those rows need them, so 100k results cost what one screen costs.

import { el } from '../lib/dom.js';
import { indexRange, MAX_SELECTION } from './selection.js';

export const CELL_PX = 96; // matches --cell in sidepanel.css; thumbnails are 256 px, shown downscaled
export const PAGE_SIZE = 200; // results per search request: a few screens, small enough to answer in ms
const OVERSCAN_ROWS = 3; // rows rendered above/below the viewport so fast scrolling shows no blank band

export class ResultGrid {
  /**
   * @param {HTMLElement} root  the scrolling container
   * @param {{thumbs: import('./thumbs.js').ThumbCache, selection: import('./selection.js').Selection,
   *   onOpen: (item) => void, onCount: (total) => void}} opts
   */
  constructor(root, { thumbs, selection, onOpen, onCount }) {
    this.root = root;
    this.thumbs = thumbs;
    this.selection = selection;
    this.anchor = -1; // where a Shift-click or Shift+arrow range starts: the last cell clicked or toggled
    this.onOpen = onOpen;
    this.onCount = onCount;
    this.inner = el('div', { class: 'grid-inner' });
    root.append(this.inner);
    this.cells = new Map(); // index -> {node, controller}
    this.pages = new Map(); // page number -> results array, or a pending Promise
    this.total = 0;
    this.selected = -1;
    this.generation = 0;
    this.album = null;
    this.fetchPage = null;
    root.addEventListener('scroll', () => this.render(), { passive: true });
    root.addEventListener('keydown', (event) => this.onKey(event));
    new ResizeObserver(() => this.render()).observe(root);
  }

  /** Show a new result set: `fetchPage(offset, limit, signal)` resolves to {results, total}. */
  async reset(album, fetchPage) {
    this.generation += 1;
    this.album = album;
    this.fetchPage = fetchPage;
    this.pages.clear();
    for (const index of [...this.cells.keys()]) this.dropCell(index);
    this.selected = -1;
    this.anchor = -1;
    this.root.scrollTop = 0;
    this.total = 0;
    await this.loadPage(0); // the first page's failure is the search's failure: the caller shows it
  }

  /** Show nothing (no album): later renders fetch nothing and a click has nothing to open. */
  clear() {
    this.generation += 1;
    this.album = null;
    this.fetchPage = null;
    this.pages.clear();
    for (const index of [...this.cells.keys()]) this.dropCell(index);
    this.selected = -1;
    this.total = 0;
    this.render();
  }

  /**
   * Ask again for what is on screen, keeping the scroll position and the selection (new images were committed).
   * Cells stay until their page's answer replaces them, so nothing flickers.
   */
  async refresh() {
    if (!this.fetchPage) return;
    this.generation += 1;
    this.pages.clear();
    const firstVisible = Math.floor(this.root.scrollTop / CELL_PX) * this.columns;
    await this.loadPage(Math.floor(firstVisible / PAGE_SIZE));
  }

  get columns() {
    return Math.max(1, Math.floor(this.root.clientWidth / CELL_PX));
  }

  item(index) {
    const page = this.pages.get(Math.floor(index / PAGE_SIZE));
    return Array.isArray(page) ? page[index % PAGE_SIZE] : undefined;
  }

  /**
   * Fetch one page of results once (a pending fetch is reused) and render when it lands. Rendering only on arrival
   * matters: re-rendering while a page is pending would ask for it again, in a loop.
   */
  loadPage(pageNo) {
    const known = this.pages.get(pageNo);
    if (known || !this.fetchPage) return Promise.resolve(known);
    const generation = this.generation;
    const pending = this.fetchPage(pageNo * PAGE_SIZE, PAGE_SIZE).then(
      (reply) => {
        if (generation !== this.generation) return; // a newer search replaced this one
        this.pages.set(pageNo, reply.results);
        this.total = reply.total;
        if (this.selected >= this.total) this.selected = this.total - 1;
        this.onCount(reply.total, reply);
        this.render();
      },
      (err) => {
        if (generation === this.generation) this.pages.delete(pageNo); // the next scroll retries it
        throw err;
      },
    );
    this.pages.set(pageNo, pending);
    return pending;
  }

  render() {
    const cols = this.columns;
    const rows = Math.ceil(this.total / cols);
    this.inner.style.height = `${rows * CELL_PX}px`;
    const first = Math.max(0, Math.floor(this.root.scrollTop / CELL_PX) - OVERSCAN_ROWS);
    const last = Math.min(rows, Math.ceil((this.root.scrollTop + this.root.clientHeight) / CELL_PX) + OVERSCAN_ROWS);
    const start = first * cols;
    const end = Math.min(this.total, last * cols);
    for (const index of [...this.cells.keys()]) {
      if (index < start || index >= end) this.dropCell(index);
    }
    for (let index = start; index < end; index += 1) {
      const item = this.item(index);
      if (!item) {
        this.loadPage(Math.floor(index / PAGE_SIZE)).catch(() => {}); // renders again when it arrives
        continue;
      }
      const existing = this.cells.get(index);
      if (existing && existing.id === item.id && existing.starred === Boolean(item.starred)) {
        this.place(existing.node, index, cols);
        continue;
      }
      if (existing) this.dropCell(index);
      this.addCell(index, item, cols);
    }
  }

  place(node, index, cols) {
    node.style.transform = `translate(${(index % cols) * CELL_PX}px, ${Math.floor(index / cols) * CELL_PX}px)`;
    node.classList.toggle('selected', index === this.selected);
    const picked = this.selection.has(node.dataset.id);
    node.classList.toggle('picked', picked);
    node.setAttribute('aria-selected', String(picked));
  }

  /** The selection changed (here, on the map or in the batch bar): mark the cells on screen. */
  showSelection() {
    const cols = this.columns;
    for (const [index, cell] of this.cells) this.place(cell.node, index, cols);
  }

  addCell(index, item, cols) {
    // the prompt is the alt text (screen readers) and the tooltip; CSS keeps it from spilling while the image loads
    const prompt = item.positive_prompt || '';
    const img = el('img', { alt: prompt || `image ${item.id}`, title: prompt || undefined, draggable: 'false' });
    const score = item.score == null ? null : el('span', { class: 'score', text: item.score.toFixed(2), title: 'Similarity score' });
    const star = item.starred ? el('span', { class: 'star', text: '★', title: 'Starred' }) : null;
    const node = el(
      'div',
      { class: 'cell', role: 'gridcell', dataset: { index, id: item.id }, onclick: (event) => this.click(index, event) },
      img,
      score,
      star,
      el('span', { class: 'check', 'aria-hidden': 'true' }),
    );
    this.place(node, index, cols);
    const controller = new AbortController();
    this.thumbs
      .get(this.album, item.id, controller.signal)
      .then((url) => {
        img.src = url;
      })
      .catch(() => {});
    this.cells.set(index, { node, controller, id: item.id, starred: Boolean(item.starred) });
    this.inner.append(node);
  }

  dropCell(index) {
    const cell = this.cells.get(index);
    if (!cell) return;
    cell.controller.abort();
    cell.node.remove();
    this.cells.delete(index);
  }

  select(index) {
    if (this.total === 0) return;
    this.selected = Math.max(0, Math.min(this.total - 1, index));
    const row = Math.floor(this.selected / this.columns);
    const top = row * CELL_PX;
    if (top < this.root.scrollTop) this.root.scrollTop = top;
    else if (top + CELL_PX > this.root.scrollTop + this.root.clientHeight) {
      this.root.scrollTop = top + CELL_PX - this.root.clientHeight;
    }
    this.render();
  }

  /** Click opens the drawer; Ctrl/Cmd-click picks one more; Shift-click picks the range from the last one. */
  click(index, event) {
    const item = this.item(index);
    if (!item) return;
    if (event.shiftKey && this.anchor >= 0) {
      this.pickRange(this.anchor, index, { add: event.ctrlKey || event.metaKey });
      this.select(index);
    } else if (event.ctrlKey || event.metaKey) {
      this.anchor = index;
      this.selection.toggle(item.id);
      this.select(index);
    } else {
      this.anchor = index;
      this.open(index);
    }
  }

  /** Pick the results from `from` to `to` (pages not fetched yet are fetched first). */
  async pickRange(from, to, { add = false } = {}) {
    const indices = indexRange(from, to).slice(0, MAX_SELECTION);
    const ids = await this.idsAt(indices);
    if (add) this.selection.add(ids);
    else this.selection.replace(ids);
  }

  /** Every result of this search, up to the most one action takes (Ctrl+A). */
  pickAll() {
    if (this.total === 0) return Promise.resolve();
    return this.pickRange(0, Math.min(this.total, MAX_SELECTION) - 1);
  }

  async idsAt(indices) {
    const generation = this.generation;
    const pages = [...new Set(indices.map((index) => Math.floor(index / PAGE_SIZE)))];
    await Promise.all(pages.map((pageNo) => this.loadPage(pageNo)));
    if (generation !== this.generation) return [];
    return indices.map((index) => this.item(index)).filter(Boolean).map((item) => item.id);
  }

  open(index) {
    this.select(index);
    const item = this.item(index);
    if (item) this.onOpen(item);
  }

  onKey(event) {
    const cols = this.columns;
    const page = Math.max(1, Math.floor(this.root.clientHeight / CELL_PX)) * cols;
    const moves = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: cols,
      ArrowUp: -cols,
      PageDown: page,
      PageUp: -page,
    };
    const ctrl = event.ctrlKey || event.metaKey;
    if (event.key in moves) {
      const from = this.selected < 0 ? 0 : this.selected;
      const to = this.selected < 0 ? 0 : Math.max(0, Math.min(this.total - 1, from + moves[event.key]));
      if (event.shiftKey) {
        if (this.anchor < 0) this.anchor = from;
        this.pickRange(this.anchor, to);
      }
      this.select(to);
    } else if (event.key === ' ' && this.selected >= 0) {
      const item = this.item(this.selected);
      this.anchor = this.selected;
      if (item) this.selection.toggle(item.id);
    } else if (ctrl && (event.key === 'a' || event.key === 'A')) this.pickAll();
    else if (event.key === 'Escape' && this.selection.size > 0 && document.querySelector('#drawer').hidden) this.selection.clear();
    else if (event.key === 'Home') this.select(0);
    else if (event.key === 'End') this.select(this.total - 1);
    else if (event.key === 'Enter' && this.selected >= 0) this.open(this.selected);
    else return;
    event.preventDefault();
  }

  /** Move the selection by `delta` and open it (drawer's previous/next keys). */
  step(delta) {
    if (this.selected >= 0) this.open(Math.max(0, Math.min(this.total - 1, this.selected + delta)));
  }
}
