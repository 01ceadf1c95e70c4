// The search form: text, negative text, an image query (dropped file or "more like this"), filters and sort, turned
// into the body of POST /albums/{key}/search. Typing searches after a pause; Enter searches at once.

import { $, debounce } from '../lib/dom.js';

const TYPING_PAUSE_MS = 350; // long enough not to search per keystroke, short enough to feel live

/** The search request body for the form's state (exported pure for unit tests). */
export function buildQuery(form, imageQuery) {
  const filters = {};
  const text = (id) => (form[id] || '').trim();
  if (text('model')) filters.model = text('model');
  if (text('lora')) filters.lora = text('lora');
  if (text('seed') && /^\d+$/.test(text('seed'))) filters.seed = Number(text('seed'));
  if (text('generator')) filters.generator = text('generator');
  if (text('dateFrom')) filters.date_from = text('dateFrom');
  if (text('dateTo')) filters.date_to = text('dateTo'); // a plain date: the daemon includes the whole day
  const body = { filters, sort: form.sort || 'score' };
  if (text('text')) body.text = text('text');
  if (text('negative')) body.negative_text = text('negative');
  if (imageQuery && imageQuery.id !== undefined) body.image_id = imageQuery.id;
  if (imageQuery && imageQuery.b64) body.image_base64 = imageQuery.b64;
  if (imageQuery && (body.text || body.negative_text)) body.image_weight = Number(form.imageWeight ?? 0.5);
  const hasQuery = body.text || body.negative_text || imageQuery;
  if (!hasQuery) body.sort = 'date'; // no query = browse, newest first
  return body;
}

export class SearchForm {
  /** @param {(body: object) => void} onSearch */
  constructor(onSearch) {
    this.onSearch = onSearch;
    this.imageQuery = null; // {id} or {b64, label}
    this.form = $('#search-form');
    this.later = debounce(() => this.submit(), TYPING_PAUSE_MS);
    this.form.addEventListener('input', (event) => {
      if (event.target.type !== 'range') this.later();
    });
    this.form.addEventListener('change', (event) => {
      if (event.target.tagName === 'SELECT' || event.target.type === 'date' || event.target.type === 'range') {
        this.submit();
      }
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    $('#image-query-clear').addEventListener('click', () => this.setImageQuery(null));
    this.watchDrops(document.body);
  }

  values() {
    const value = (id) => $(id).value;
    return {
      text: value('#search-text'),
      negative: value('#search-negative'),
      model: value('#filter-model'),
      lora: value('#filter-lora'),
      seed: value('#filter-seed'),
      generator: value('#filter-generator'),
      dateFrom: value('#filter-date-from'),
      dateTo: value('#filter-date-to'),
      sort: value('#search-sort'),
      imageWeight: value('#image-weight'),
    };
  }

  /** The filters part of the current query (the map is narrowed by the same filters). */
  filters() {
    return buildQuery(this.values(), null).filters;
  }

  submit() {
    this.later.cancel(); // Enter after typing: search now, not once more when the pause ends
    this.onSearch(buildQuery(this.values(), this.imageQuery));
  }

  /** `query` is {id, thumbUrl?, label} (more like this), {b64, thumbUrl, label} (dropped file) or null. */
  setImageQuery(query) {
    this.imageQuery = query;
    $('#image-query').hidden = !query;
    $('#drop-hint').hidden = Boolean(query);
    if (query) {
      $('#image-query-label').textContent = query.label;
      $('#image-query-thumb').src = query.thumbUrl || '';
      $('#search-sort').value = 'score';
    }
    this.submit();
  }

  watchDrops(zone) {
    zone.addEventListener('dragover', (event) => {
      if (![...event.dataTransfer.types].includes('Files')) return;
      event.preventDefault();
      this.form.classList.add('drop-target');
    });
    zone.addEventListener('dragleave', () => this.form.classList.remove('drop-target'));
    zone.addEventListener('drop', async (event) => {
      this.form.classList.remove('drop-target');
      const file = [...event.dataTransfer.files].find((f) => f.type.startsWith('image/'));
      if (!file) return;
      event.preventDefault();
      await this.useFile(file);
    });
  }

  async useFile(file) {
    const b64 = await fileToBase64(file);
    this.setImageQuery({ b64, thumbUrl: URL.createObjectURL(file), label: file.name });
  }
}

async function fileToBase64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = '';
  const CHUNK = 0x8000; // String.fromCharCode takes arguments: keep each call well under the engine's limit
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}
