// Near-duplicates of the album: groups of images whose CLIP vectors are nearly the same, side by side, so a user
// can compare copies (file name, dimensions, size) and open any of them in the drawer. Thumbnails and records are
// fetched only for the groups scrolled into view; an answer for an album or threshold no longer shown is dropped.

import { el } from '../lib/dom.js';
import { formatBytes, imageName } from './drawer.js';

export const GROUPS_PER_PAGE = 20; // a couple of screens of groups; the daemon caches the grouping, so more is cheap
export const MEMBERS_SHOWN = 12; // members drawn per group before "Show all": a big group must not bury the rest
export const THRESHOLD_MIN = 0.9; // looser than this is "similar", not "the same picture" (CLIP cosine)
export const THRESHOLD_MAX = 0.99; // identical files score 1.0; 0.99 still admits re-encodes and small resizes
const THRESHOLD_STEP = 0.01;
const SLIDER_PAUSE_MS = 300; // dragging the slider asks once it rests, not for every step it passes
const RECORDS_PARALLEL = 4; // record fetches in flight at once (thumbnails have their own pool in thumbs.js)
const NEAR_VIEW_PX = 300; // groups this close below the fold start loading, so scrolling rarely shows blanks
const IDENTICAL_SCORE = 0.9995; // shows as "1.000" anyway: say what it means

/** A threshold the daemon accepts, rounded to the slider's step (NaN and out-of-range values are clamped). */
export function clampThreshold(value, min = THRESHOLD_MIN, max = THRESHOLD_MAX) {
  const number = Number(value);
  if (!Number.isFinite(number)) return min;
  return Math.round(Math.min(max, Math.max(min, number)) * 100) / 100;
}

/** The API path of one page of groups; no threshold asks for the daemon's default. */
export function duplicatesPath(album, { threshold = null, offset = 0, limit = GROUPS_PER_PAGE } = {}) {
  const query = new URLSearchParams();
  if (threshold !== null) query.set('threshold', threshold.toFixed(2));
  query.set('offset', String(offset));
  query.set('limit', String(limit));
  return `/albums/${encodeURIComponent(album)}/duplicates?${query}`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The line above the groups: how many were found, and how many of them are on screen. */
export function summaryText({ total, groups, threshold }) {
  if (total === 0) return '';
  const images = groups.reduce((sum, group) => sum + group.ids.length, 0);
  const at = `at similarity ≥ ${threshold.toFixed(2)}`;
  if (groups.length >= total) return `${plural(total, 'group')} of near-duplicates, ${plural(images, 'image')}, ${at}`;
  return `${plural(total, 'group')} of near-duplicates ${at}; showing ${groups.length} (${plural(images, 'image')})`;
}

/** A group's score (the closest pair in it) as people read it. */
export function scoreText(score) {
  return score >= IDENTICAL_SCORE ? 'looks identical' : `similarity ${score.toFixed(3)}`;
}

export function moreText(total, shown) {
  const left = total - shown;
  return left > 0 ? `Show more groups (${left} more)` : '';
}

/** {name, details} under a thumbnail: the file's name, then dimensions and size where the record has them. */
export function memberCaption(record) {
  const name = imageName(record, `image ${record && record.id}`);
  const width = record && record.width;
  const height = record && record.height;
  const details = [width && height ? `${width} × ${height}` : '', record && record.size != null ? formatBytes(record.size) : '']
    .filter(Boolean)
    .join(' · ');
  return { name, details, path: (record && record.path) || '' };
}

/** The one member with the most pixels (the copy worth keeping), or null when no single one is larger. */
export function largestMember(records) {
  let best = null;
  let bestPixels = 0;
  let tied = false;
  for (const record of records) {
    const pixels = (record.width || 0) * (record.height || 0);
    if (pixels > bestPixels) [best, bestPixels, tied] = [record.id, pixels, false];
    else if (pixels === bestPixels && pixels > 0) tied = true;
  }
  return tied ? null : best;
}

export class DuplicatesView {
  /** @param {HTMLElement} root @param {{getDaemon, thumbs, onOpen: (id) => void, onBack: () => void}} opts */
  constructor(root, { getDaemon, thumbs, onOpen, onBack }) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.thumbs = thumbs;
    this.onOpen = onOpen;
    this.onBack = onBack;
    this.album = null;
    this.opened = null; // the image last opened in the drawer from here: ←/→ walk on from it
    this.threshold = null; // null until the daemon's first answer says its default
    this.groups = [];
    this.total = 0;
    this.generation = 0; // bumped by every new album/threshold: older answers see a different number and stop
    this.controller = new AbortController();
    this.records = new Map(); // id -> caption record, for this album
    this.recordQueue = [];
    this.recordsActive = 0;
    this.build();
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), {
      root,
      rootMargin: `0px 0px ${NEAR_VIEW_PX}px 0px`,
    });
  }

  build() {
    this.slider = el('input', {
      id: 'dup-threshold',
      type: 'range',
      min: THRESHOLD_MIN,
      max: THRESHOLD_MAX,
      step: THRESHOLD_STEP,
      value: '0.95',
      'aria-label': 'Similarity threshold',
      oninput: () => this.onSlide(),
      onchange: () => this.onSlide(true),
    });
    this.sliderValue = el('output', { for: 'dup-threshold', class: 'dup-threshold-value' });
    this.pending = null;
    const back = el('button', { type: 'button', class: 'link dup-back', onclick: () => this.onBack() }, '← Back to grid');
    const control = el(
      'label',
      { class: 'dup-threshold', title: 'How alike two images must be to count as near-duplicates (CLIP similarity, 1 = identical)' },
      'Similarity ≥',
      this.slider,
      this.sliderValue,
    );
    this.summary = el('p', { id: 'dup-summary', class: 'hint', 'aria-live': 'polite' });
    this.error = el('p', { id: 'dup-error', class: 'hint error', role: 'alert', hidden: true });
    this.emptyText = el('p', { id: 'dup-empty-text' });
    this.emptyHint = el('p', { class: 'hint' });
    const loosest = () => this.setThreshold(Number(this.slider.min));
    this.emptyAction = el('button', { type: 'button', id: 'dup-lower', hidden: true, onclick: loosest });
    this.empty = el('div', { id: 'dup-empty', class: 'empty', hidden: true }, this.emptyText, this.emptyHint, this.emptyAction);
    this.list = el('ol', { id: 'dup-groups', class: 'dup-groups', 'aria-label': 'Near-duplicate groups' });
    this.more = el('button', { type: 'button', id: 'dup-more', class: 'dup-more', hidden: true, onclick: () => this.loadMore() });
    const head = el('div', { class: 'dup-head' }, back, control);
    this.root.replaceChildren(head, this.summary, this.error, this.empty, this.list, this.more);
    this.showSlider(clampThreshold(this.slider.value));
  }

  /** Show the album's groups at the current threshold (the daemon's default the first time). */
  async show(album) {
    if (album !== this.album) this.records.clear();
    this.album = album;
    await this.reload();
  }

  clear() {
    this.restart();
    this.album = null;
    this.records.clear();
    this.summary.textContent = '';
    this.error.hidden = true;
    this.empty.hidden = true;
  }

  /** Drop what is shown and in flight: a new album or threshold starts from its first page. */
  restart() {
    this.generation += 1;
    this.controller.abort();
    this.controller = new AbortController();
    this.recordQueue = [];
    this.observer.disconnect();
    this.groups = [];
    this.total = 0;
    this.list.replaceChildren();
    this.more.hidden = true;
  }

  async reload() {
    if (!this.album) return;
    this.restart();
    this.error.hidden = true;
    this.empty.hidden = true;
    this.summary.textContent = 'Looking for near-duplicates…';
    await this.fetchPage(0);
  }

  async loadMore() {
    this.more.disabled = true;
    await this.fetchPage(this.groups.length);
  }

  /** One page of groups, appended unless a newer album or threshold took over while it was asked for. */
  async fetchPage(offset) {
    const { generation, album } = this;
    const signal = this.controller.signal;
    let reply;
    try {
      reply = await this.getDaemon().get(duplicatesPath(album, { threshold: this.threshold, offset }), signal);
    } catch (err) {
      if (generation !== this.generation || (err && err.name === 'AbortError')) return;
      this.more.disabled = false;
      this.showError(err);
      return;
    }
    if (generation !== this.generation) return;
    this.error.hidden = true;
    if (this.threshold === null) {
      this.threshold = reply.threshold; // the daemon's default; the slider widens if it lies outside
      this.slider.min = String(Math.min(THRESHOLD_MIN, reply.threshold));
      this.slider.max = String(Math.max(THRESHOLD_MAX, reply.threshold));
      this.showSlider(reply.threshold);
    }
    this.total = reply.total;
    this.groups.push(...reply.groups);
    for (const group of reply.groups) this.list.append(this.groupNode(group));
    this.summary.textContent = summaryText({ total: this.total, groups: this.groups, threshold: reply.threshold });
    this.more.textContent = moreText(this.total, this.groups.length);
    this.more.hidden = !this.more.textContent;
    this.more.disabled = false;
    this.showEmpty(this.total === 0);
  }

  showError(err) {
    if (this.groups.length === 0) this.summary.textContent = ''; // a failed "more" keeps the count of those shown
    this.empty.hidden = true;
    this.error.textContent = (err && err.message) || String(err);
    this.error.hidden = false;
  }

  showEmpty(empty) {
    this.empty.hidden = !empty;
    if (!empty) return;
    const canLower = this.threshold > Number(this.slider.min);
    this.emptyText.textContent = 'No near-duplicates at this similarity.';
    this.emptyHint.textContent = canLower
      ? 'Lower the similarity to find looser matches (re-encodes, crops, small edits).'
      : 'Every image in this album looks different enough from the others.';
    this.emptyAction.hidden = !canLower;
    this.emptyAction.textContent = `Try ${Number(this.slider.min).toFixed(2)}`;
  }

  showSlider(value) {
    this.slider.value = String(value);
    this.sliderValue.textContent = Number(value).toFixed(2);
  }

  /** The slider moved: show the value at once, ask the daemon when it rests (or at once on release). */
  onSlide(released = false) {
    const value = clampThreshold(this.slider.value, Number(this.slider.min), Number(this.slider.max));
    this.sliderValue.textContent = value.toFixed(2);
    clearTimeout(this.pending);
    if (value === this.threshold && !released) return;
    this.pending = setTimeout(() => this.setThreshold(value), released ? 0 : SLIDER_PAUSE_MS);
  }

  setThreshold(value) {
    clearTimeout(this.pending);
    const clamped = clampThreshold(value, Number(this.slider.min), Number(this.slider.max));
    this.showSlider(clamped);
    if (clamped === this.threshold && this.groups.length + this.total > 0) return; // already shown
    this.threshold = clamped;
    this.reload();
  }

  groupNode(group) {
    const members = el('div', { class: 'dup-members' });
    const count = el('span', { class: 'dup-count', text: plural(group.ids.length, 'image') });
    const score = el('span', { class: 'dup-score', text: scoreText(group.score), title: `Closest pair: ${group.score}` });
    const head = el('div', { class: 'dup-group-head' }, count, score);
    const node = el('li', { class: 'dup-group', dataset: { ids: group.ids.join(',') } }, head, members);
    node.group = { ids: group.ids, members, drawn: 0, loaded: false };
    this.drawMembers(node, MEMBERS_SHOWN);
    this.observer.observe(node);
    return node;
  }

  /** Members up to `upTo` (a big group stops at MEMBERS_SHOWN with a "Show all" button). */
  drawMembers(node, upTo) {
    const state = node.group;
    node.querySelector('.dup-all')?.remove();
    for (const id of state.ids.slice(state.drawn, upTo)) state.members.append(this.memberNode(id));
    state.drawn = Math.min(upTo, state.ids.length);
    if (state.drawn < state.ids.length) {
      const all = el('button', { type: 'button', class: 'link dup-all', onclick: () => this.drawMembers(node, state.ids.length) });
      all.textContent = `Show all ${state.ids.length}`;
      node.append(all);
    }
    if (state.loaded) this.loadMembers(node);
  }

  memberNode(id) {
    const img = el('img', { alt: `image ${id}`, draggable: 'false' });
    const thumb = el('button', { type: 'button', class: 'dup-thumb', title: 'Open in the drawer', onclick: () => this.open(id) }, img);
    const name = el('span', { class: 'dup-name', text: `image ${id}` });
    const details = el('span', { class: 'dup-details' });
    return el('figure', { class: 'dup-member', dataset: { id } }, thumb, el('figcaption', {}, name, details));
  }

  open(id) {
    this.opened = id;
    this.onOpen(id);
  }

  /** The drawer's ←/→ from an image opened here: the next or previous copy shown on this screen, groups in order. */
  step(delta) {
    const buttons = [...this.list.querySelectorAll('.dup-member')];
    const at = buttons.findIndex((member) => member.dataset.id === String(this.opened));
    if (at < 0) return;
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + delta))];
    if (next === buttons[at]) return;
    next.scrollIntoView({ block: 'nearest' });
    next.querySelector('.dup-thumb').focus({ preventScroll: true }); // Esc then leaves the focus where the drawer was
    this.open(Number(next.dataset.id));
  }

  onVisible(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      this.observer.unobserve(entry.target);
      entry.target.group.loaded = true;
      this.loadMembers(entry.target);
    }
  }

  /** Thumbnails and captions of a group's drawn members that have none yet. */
  loadMembers(node) {
    const { album, generation } = this;
    const signal = this.controller.signal;
    for (const member of node.querySelectorAll('.dup-member:not([data-loading])')) {
      member.dataset.loading = '';
      const id = Number(member.dataset.id);
      const img = member.querySelector('img');
      this.thumbs
        .get(album, id, signal)
        .then((url) => {
          if (generation === this.generation) img.src = url;
        })
        .catch(() => {}); // a missing file keeps its grey box; its caption still says which one
      this.record(album, id, signal)
        .then((record) => {
          if (generation !== this.generation) return;
          this.caption(member, record);
          this.markLargest(node);
        })
        .catch(() => {});
    }
  }

  caption(member, record) {
    const { name, details, path } = memberCaption(record);
    const nameNode = member.querySelector('.dup-name');
    nameNode.textContent = name;
    nameNode.title = path;
    member.querySelector('.dup-details').textContent = details;
    member.querySelector('img').alt = name;
    member.querySelector('.dup-thumb').setAttribute('aria-label', `Open ${name}`);
  }

  /** Once every drawn member has its record, badge the one with the most pixels. */
  markLargest(node) {
    const ids = node.group.ids.slice(0, node.group.drawn);
    if (!ids.every((id) => this.records.has(id))) return;
    const largest = largestMember(ids.map((id) => this.records.get(id)));
    for (const member of node.querySelectorAll('.dup-member')) {
      member.classList.toggle('largest', Number(member.dataset.id) === largest);
      const caption = member.querySelector('figcaption');
      caption.querySelector('.dup-badge')?.remove();
      if (Number(member.dataset.id) === largest) caption.prepend(el('span', { class: 'dup-badge', text: 'largest' }));
    }
  }

  /** An image's caption fields, fetched once per album through a small pool. */
  record(album, id, signal) {
    const known = this.records.get(id);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      this.recordQueue.push({ album, id, signal, resolve, reject });
      this.pumpRecords();
    });
  }

  pumpRecords() {
    while (this.recordsActive < RECORDS_PARALLEL && this.recordQueue.length > 0) {
      const job = this.recordQueue.shift();
      if (job.signal.aborted) {
        job.reject(new DOMException('aborted', 'AbortError'));
        continue;
      }
      this.recordsActive += 1;
      this.getDaemon()
        .get(`/images/${encodeURIComponent(job.album)}/${job.id}`, job.signal)
        .then((full) => {
          // only what the caption needs: a record's raw metadata (a ComfyUI workflow) can be large
          const record = { id: job.id, path: full.path, width: full.width, height: full.height, size: full.size };
          if (job.album === this.album) this.records.set(job.id, record);
          job.resolve(record);
        }, job.reject)
        .finally(() => {
          this.recordsActive -= 1;
          this.pumpRecords();
        });
    }
  }
}
