// The metadata drawer: the fields a user copies from (each with a copy icon), the full raw metadata on demand, and
// the three InvokeAI actions with their outcome shown inline.

import { $, copyText, el, showResult } from '../lib/dom.js';

export const GREYED_TOOLTIP =
  'Recall and Remix need InvokeAI generation metadata that PhotoMap recognises; this image has none.';
const SENT_MESSAGE = 'Sent to InvokeAI — press Invoke in the InvokeAI tab';

/** [field id, label, text] rows for an ImageMetadata record; empty values are left out. Pure, for unit tests. */
export function drawerFields(meta) {
  const rows = [];
  const add = (id, label, value) => {
    if (value !== undefined && value !== null && String(value).trim() !== '') rows.push([id, label, String(value)]);
  };
  add('created_at', 'Date', meta.created_at ? formatDate(meta.created_at) : '');
  add('positive_prompt', 'Positive prompt', meta.positive_prompt);
  add('negative_prompt', 'Negative prompt', meta.negative_prompt);
  add('model', 'Model', meta.model && meta.model.name);
  add('seed', 'Seed', meta.seed);
  if (meta.init_image && meta.init_image.image_name) {
    const strength = meta.init_image.strength == null ? '' : ` (strength ${meta.init_image.strength})`;
    add('init_image', 'Init image', `${meta.init_image.image_name}${strength}`);
  }
  add('loras', 'LoRAs', (meta.loras || []).map((l) => `${l.name} (${l.weight ?? 1})`).join('\n'));
  add(
    'reference_images',
    'Reference images',
    (meta.reference_images || [])
      .map((r) => [r.image_name, r.model, r.weight == null ? null : `weight ${r.weight}`].filter(Boolean).join(', '))
      .join('\n'),
  );
  return rows;
}

/** Raw metadata as readable text: chunks holding JSON are shown parsed, so every nested field is visible. */
export function fullMetadataText(raw) {
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
  constructor({ getDaemon, thumbs, onMoreLikeThis, onStep }) {
    this.getDaemon = getDaemon;
    this.thumbs = thumbs;
    this.node = $('#drawer');
    this.current = null;
    $('#drawer-close').addEventListener('click', () => this.close());
    $('#drawer-more').addEventListener('click', () => this.current && onMoreLikeThis(this.current));
    $('#drawer-full-toggle').addEventListener('click', () => this.toggleFull());
    for (const button of this.node.querySelectorAll('.actions button')) {
      button.addEventListener('click', () => this.act(button.dataset.action, button));
    }
    document.addEventListener('keydown', (event) => {
      if (this.node.hidden) return;
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
    this.renderFields(meta);
    const recallable = Boolean(meta.recallable);
    for (const id of ['#action-remix', '#action-recall']) {
      $(id).disabled = !recallable;
      $(id).title = recallable ? '' : GREYED_TOOLTIP;
    }
    const img = $('#drawer-image');
    img.removeAttribute('src');
    this.thumbs
      .get(album, id)
      .then((url) => this.current && this.current.id === id && (img.src = url))
      .catch(() => {});
  }

  renderFields(meta) {
    const list = $('#drawer-fields');
    list.replaceChildren();
    for (const [field, label, text] of drawerFields(meta)) {
      const copy = el('button', {
        class: 'icon copy copy-icon',
        title: `Copy ${label.toLowerCase()}`,
        'aria-label': `Copy ${label.toLowerCase()}`,
        dataset: { field },
        onclick: async () => showResult($('#action-result'), await copyText(text), `Copied ${label.toLowerCase()}`),
      });
      list.append(el('dt', {}, el('span', { text: label }), copy), el('dd', { dataset: { field }, text }));
    }
    if (!list.children.length) list.append(el('dd', { text: 'No generation metadata in this image.' }));
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
      showResult(result, false, err.message);
    } finally {
      button.disabled = action !== 'ref' && !(this.current.record.metadata || {}).recallable;
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
