// The metadata drawer: the fields a user copies from (each with a copy icon), the full raw metadata on demand, and
// the three InvokeAI actions with their outcome shown inline.

import { $, copyText, el, showResult } from '../lib/dom.js';

export const GREYED_TOOLTIP =
  'Recall and Remix need InvokeAI generation metadata that PhotoMap recognises; this image has none.';
export const NO_BACKEND = 'Set your InvokeAI URL in Settings first: Use as Ref Image, Remix and Recall send to it.';
const GENERATOR_NAMES = { invokeai: 'InvokeAI', a1111: 'A1111 / Forge', comfyui: 'ComfyUI', novelai: 'NovelAI' };

/**
 * Each action's {disabled, title} for an image's metadata and the InvokeAI backend state ({url, probe}); the reason
 * a button is grey is its tooltip. Pure, for unit tests.
 */
export function actionStates(meta, backend) {
  const states = {};
  const configured = Boolean(backend && backend.url);
  const actions = (backend && backend.probe && backend.probe.actions) || {};
  const generator = GENERATOR_NAMES[meta.generator] || meta.generator;
  for (const action of ['ref', 'append', 'remix', 'recall']) {
    let reason = '';
    if (!configured) reason = NO_BACKEND;
    else if (action === 'append' && actions.append && actions.append.available === false) reason = actions.append.reason;
    else if (action === 'ref' || action === 'append') reason = '';
    else if (actions[action] && actions[action].available === false) reason = actions[action].reason;
    else if (!meta.recallable) {
      reason = generator
        ? `Recall and Remix need InvokeAI generation metadata; this image was made with ${generator}.`
        : GREYED_TOOLTIP;
    }
    states[action] = { disabled: Boolean(reason), title: reason };
  }
  // Append only exists from InvokeAI 6.14 (older servers ignore `append` and would replace the references): hide it
  states.append.hidden = Boolean(configured && actions.append && actions.append.available === false);
  return states;
}

/** A daemon error about InvokeAI, said so that it names InvokeAI and its URL, without raw status codes. */
export function actionError(message, url) {
  const where = url ? `InvokeAI at ${url}` : 'InvokeAI';
  if (/^Could not reach backend/.test(message)) return `Could not reach ${where}: is it running?`;
  if (/HTTP 413/.test(message)) return `${where} refused the image: it is larger than the server accepts (HTTP 413).`;
  const status = /HTTP (\d{3})/.exec(message);
  if (status && /refused the request/.test(message)) return `${where} refused the request (HTTP ${status[1]}). Check InvokeAI's own log for why.`;
  return message;
}
const SENT_MESSAGE = 'Sent to InvokeAI — press Invoke in the InvokeAI tab';

// fields not worth a copy icon (nobody pastes a byte count); every other field has one
export const NO_COPY = new Set(['size', 'dimensions', 'generator']);

/** The name a user knows an image by: a board image's InvokeAI name, else the file's name (`fallback` without one). */
export function imageName(record, fallback = '') {
  if (record && record.image_name) return record.image_name;
  return ((record && record.path) || '').split(/[\\/]/).pop() || fallback;
}

export function formatBytes(bytes) {
  if (!(bytes >= 0)) return '';
  const units = ['bytes', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) [value, unit] = [value / 1024, unit + 1];
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * [field id, label, text] rows for an image: the file (name, folder, size, dimensions) from the record, then the
 * generation settings from its ImageMetadata; empty values are left out. Pure, for unit tests.
 */
export function drawerFields(meta, record = {}) {
  const rows = [];
  const add = (id, label, value) => {
    if (value !== undefined && value !== null && String(value).trim() !== '') rows.push([id, label, String(value)]);
  };
  const path = record.path || '';
  if (record.image_name) {
    // a board album's image lives on the InvokeAI server: its name is what InvokeAI shows, there is no local path
    add('file_name', 'InvokeAI image', record.image_name);
  } else {
    add('file_name', 'File', imageName(record));
    add('path', 'Path', path);
  }
  add('created_at', 'Date', meta.created_at ? formatDate(meta.created_at) : '');
  add('positive_prompt', 'Positive prompt', meta.positive_prompt);
  add('negative_prompt', 'Negative prompt', meta.negative_prompt);
  add('model', 'Model', meta.model && meta.model.name);
  add('seed', 'Seed', meta.seed);
  add('steps', 'Steps', meta.steps);
  add('cfg_scale', 'CFG scale', meta.cfg_scale);
  add('scheduler', 'Scheduler', [meta.scheduler, meta.schedule_type].filter(Boolean).join(' · '));
  if (meta.init_image && meta.init_image.image_name) {
    const strength = meta.init_image.strength == null ? '' : ` (strength ${meta.init_image.strength})`;
    const name = meta.init_image.image_name.startsWith('data:') ? 'embedded in the file' : meta.init_image.image_name;
    add('init_image', 'Init image', `${name}${strength}`);
  }
  add('loras', 'LoRAs', (meta.loras || []).map((l) => `${l.name} (${l.weight ?? 1})`).join('\n'));
  add(
    'reference_images',
    'Reference images',
    (meta.reference_images || [])
      .map((r) => [r.image_name, r.model, r.weight == null ? null : `weight ${r.weight}`].filter(Boolean).join(', '))
      .join('\n'),
  );
  const generator = GENERATOR_NAMES[meta.generator] || meta.generator;
  add('generator', 'Made with', generator ? [generator, meta.app_version].filter(Boolean).join(' ') : 'No generation metadata');
  const width = record.width || meta.width;
  const height = record.height || meta.height;
  add('dimensions', 'Dimensions', width && height ? `${width} × ${height}` : '');
  add('size', 'File size', record.size == null ? '' : formatBytes(record.size));
  return rows;
}

/** Raw metadata as readable text: chunks holding JSON are shown parsed, so every nested field is visible. */
export function fullMetadataText(raw) {
  if (!raw || Object.keys(raw).length === 0) return 'This file carries no embedded text metadata (no PNG text chunks, EXIF comments or XMP).';
  const expanded = {};
  for (const [key, value] of Object.entries(raw || {})) {
    if (typeof value === 'string') {
      try {
        expanded[key] = JSON.parse(value);
        continue;
      } catch {
        // plain text chunk (A1111 parameters, Dream): keep as is
      }
    }
    expanded[key] = value;
  }
  return JSON.stringify(expanded, null, 2);
}

function formatDate(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export class Drawer {
  /** @param {{getDaemon: () => any, thumbs: any, onMoreLikeThis: (item) => void}} opts */
  constructor({ getDaemon, thumbs, onMoreLikeThis, onStep, getBackend, onStarred }) {
    this.getDaemon = getDaemon;
    this.onStarred = onStarred || (() => {});
    this.getBackend = getBackend || (async () => null);
    this.onFullImage = () => {}; // set by the lightbox: the full file of the image now shown arrived
    this.objectUrl = null;
    this.thumbs = thumbs;
    this.node = $('#drawer');
    this.current = null;
    $('#drawer-close').addEventListener('click', () => this.close());
    $('#drawer-more').addEventListener('click', () => this.current && onMoreLikeThis(this.current));
    $('#drawer-full-toggle').addEventListener('click', () => this.toggleFull());
    $('#drawer-star').addEventListener('click', () => this.toggleStar());
    for (const button of this.node.querySelectorAll('.actions button')) {
      button.addEventListener('click', () => this.act(button.dataset.action, button));
    }
    document.addEventListener('keydown', (event) => {
      if (this.node.hidden || event.defaultPrevented) return; // the lightbox answers its own keys first
      if (event.key === 'Escape') this.close();
      else if (event.key === 'ArrowRight' && onStep) onStep(1);
      else if (event.key === 'ArrowLeft' && onStep) onStep(-1);
      else return;
      event.preventDefault();
    });
  }

  async open(album, id) {
    const record = await this.getDaemon().get(`/images/${encodeURIComponent(album)}/${id}`);
    this.current = { album, id, record };
    const meta = record.metadata || {};
    this.node.hidden = false;
    $('#action-result').textContent = '';
    $('#drawer-full').hidden = true;
    $('#drawer-full').textContent = fullMetadataText(meta.raw);
    $('#drawer-full-toggle').textContent = 'View full metadata';
    this.renderFields(meta, record);
    this.showStar(Boolean(record.starred));
    this.showInitImage(meta);
    await this.applyActionStates(meta);
    const img = $('#drawer-image');
    img.removeAttribute('src');
    const isCurrent = () => this.current && this.current.album === album && this.current.id === id;
    // the thumbnail at once, then the full file in its place (the preview is not a 256 px thumbnail stretched)
    this.thumbs
      .get(album, id)
      .then((url) => isCurrent() && !img.dataset.full && (img.src = url))
      .catch(() => {});
    delete img.dataset.full;
    this.fullUrl = this.getDaemon()
      .blob(`/images/${encodeURIComponent(album)}/${id}/file`)
      .then((blob) => {
        if (!isCurrent()) return null;
        this.dropFull();
        this.objectUrl = URL.createObjectURL(blob);
        img.src = this.objectUrl;
        img.dataset.full = 'true';
        this.onFullImage(this.objectUrl, record);
        return this.objectUrl;
      })
      .catch(() => null);
  }

  dropFull() {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  async applyActionStates(meta) {
    this.node.dataset.actions = 'pending'; // the backend's state may take a probe's round trip to learn
    const current = this.current;
    this.backend = await this.getBackend().catch(() => null);
    if (current !== this.current) return; // another image was opened meanwhile
    const states = actionStates(meta, this.backend);
    for (const [action, state] of Object.entries(states)) {
      const button = $(`#action-${action}`);
      button.disabled = state.disabled;
      button.title = state.title || button.dataset.title || '';
      button.hidden = Boolean(state.hidden);
    }
    const hint = $('#action-hint');
    const reason = states.ref.title || (states.recall.disabled && states.recall.title) || '';
    hint.textContent = reason;
    hint.hidden = !reason;
    this.states = states;
    this.node.dataset.actions = 'ready';
  }

  /** A 1.x init image stored in the file as a data: URI is shown (data: images are allowed by the panel's CSP). */
  showInitImage(meta) {
    const img = $('#drawer-init');
    const src = meta.init_image && meta.init_image.image_name;
    const isData = typeof src === 'string' && /^data:image\/(png|jpeg|webp);base64,/.test(src);
    img.hidden = !isData;
    if (isData) img.src = src;
    else img.removeAttribute('src');
  }

  renderFields(meta, record) {
    const list = $('#drawer-fields');
    list.replaceChildren();
    for (const [field, label, text] of drawerFields(meta, record)) {
      const copy = NO_COPY.has(field) ? null : el('button', {
        class: 'icon copy copy-icon',
        title: `Copy ${label.toLowerCase()}`,
        'aria-label': `Copy ${label.toLowerCase()}`,
        dataset: { field },
        onclick: async () => showResult($('#action-result'), await copyText(text), `Copied ${label.toLowerCase()}`),
      });
      list.append(el('dt', {}, el('span', { text: label }), copy), el('dd', { dataset: { field }, text }));
    }

  }

  showStar(starred) {
    const button = $('#drawer-star');
    button.textContent = starred ? '★' : '☆';
    button.setAttribute('aria-pressed', String(starred));
    button.title = starred ? 'Starred: click to unstar' : 'Star this image';
  }

  /** Star or unstar the image shown: in InvokeAI for a board album, a local favourite for a folder album. */
  async toggleStar() {
    if (!this.current) return;
    const { album, id, record } = this.current;
    const starred = !record.starred;
    try {
      const reply = await this.getDaemon().post(`/albums/${encodeURIComponent(album)}/selection/star`, { ids: [id], starred });
      if (this.current && this.current.id === id) {
        if (reply.ids.includes(id)) record.starred = starred;
        this.showStar(Boolean(record.starred));
        showResult($('#action-result'), reply.ids.includes(id), reply.message);
      }
      this.onStarred(id, record.starred);
    } catch (err) {
      showResult($('#action-result'), false, actionError(err.message, this.backend && this.backend.url));
    }
  }

  toggleFull() {
    const full = $('#drawer-full');
    full.hidden = !full.hidden;
    $('#drawer-full-toggle').textContent = full.hidden ? 'View full metadata' : 'Hide full metadata';
  }

  async act(action, button) {
    if (!this.current) return;
    const { album, id } = this.current;
    const result = $('#action-result');
    button.disabled = true;
    result.textContent = 'Sending…';
    result.className = 'action-result';
    try {
      const reply = await this.getDaemon().post(`/images/${encodeURIComponent(album)}/${id}/${action}`, {});
      const fallback = action === 'ref' ? `Uploaded to InvokeAI board "${reply.board_name || 'Uncategorized'}"` : SENT_MESSAGE;
      showResult(result, reply.ok !== false, reply.message || fallback);
    } catch (err) {
      showResult(result, false, actionError(err.message, this.backend && this.backend.url));
    } finally {
      if (this.states) button.disabled = this.states[action].disabled;
    }
  }

  close() {
    const wasOpen = !this.node.hidden;
    this.node.hidden = true;
    this.current = null;
    const grid = document.querySelector('#grid');
    if (wasOpen && grid && grid.offsetParent) grid.focus(); // arrow keys keep walking the grid after Esc
  }
}
