// The search form: text, negative text, an image query (dropped file or "more like this"), prompt keywords, filters
// with pick-lists of the album's own models and LoRAs, the score cut and the sort, turned into the body of POST
// /albums/{key}/search. Typing searches after a pause; Enter searches at once. Active filters show as chips (also
// while the filters are folded away), each removable, with one Clear for all.

import { $, debounce, el } from '../lib/dom.js';

const TYPING_PAUSE_MS = 350; // long enough not to search per keystroke, short enough to feel live
export const SEED_ERROR = 'Seed must be a whole number, e.g. 1234567890'; // the daemon's wording, said before asking
const MIN_SCORE_ERROR = 'Min score must be a number from -1 to 1 (or empty for the automatic cut)';
const GENERATOR_LABELS = { invokeai: 'InvokeAI', a1111: 'A1111 / Forge', comfyui: 'ComfyUI', novelai: 'NovelAI', unknown: 'unknown / none' };

// form field -> [chip label, element id]; the chips and Clear work from this one table
const FILTER_FIELDS = {
  keywords: ['Prompt has', '#search-keywords'],
  model: ['Model', '#filter-model'],
  lora: ['LoRA', '#filter-lora'],
  seed: ['Seed', '#filter-seed'],
  generator: ['Generator', '#filter-generator'],
  dateFrom: ['From', '#filter-date-from'],
  dateTo: ['To', '#filter-date-to'],
  starred: ['Starred', '#filter-starred'],
  minScore: ['Min score', '#search-min-score'],
};

const trimmed = (form, id) => String(form[id] ?? '').trim();

/** The form's first invalid field as {field, message}, or null. Pure, for unit tests. */
export function validate(form) {
  if (trimmed(form, 'seed') && !/^\d+$/.test(trimmed(form, 'seed'))) return { field: 'seed', message: SEED_ERROR };
  const min = trimmed(form, 'minScore');
  if (min && !(Number.isFinite(Number(min)) && Number(min) >= -1 && Number(min) <= 1)) return { field: 'minScore', message: MIN_SCORE_ERROR };
  return null;
}

/** Is there something to rank by (text or image)? "Best match" needs it. */
export const hasQuery = (form, imageQuery) => Boolean(trimmed(form, 'text') || trimmed(form, 'negative') || imageQuery);

/** The search request body for the form's state (exported pure for unit tests). */
export function buildQuery(form, imageQuery, { showAll = false, scope = null } = {}) {
  const filters = {};
  if (trimmed(form, 'starred') === 'true') filters.starred = true;
  if (scope && scope.cluster !== undefined) filters.cluster = scope.cluster;
  if (scope && scope.ids) filters.ids = scope.ids;
  if (trimmed(form, 'model')) filters.model = trimmed(form, 'model');
  if (trimmed(form, 'lora')) filters.lora = trimmed(form, 'lora');
  if (/^\d+$/.test(trimmed(form, 'seed'))) filters.seed = trimmed(form, 'seed'); // as text: seeds pass 2^53
  if (trimmed(form, 'generator')) filters.generator = trimmed(form, 'generator');
  if (trimmed(form, 'dateFrom')) filters.date_from = trimmed(form, 'dateFrom');
  if (trimmed(form, 'dateTo')) filters.date_to = trimmed(form, 'dateTo'); // a plain date: the daemon includes the whole day
  const ranked = hasQuery(form, imageQuery);
  const sort = form.sort === 'oldest' || form.sort === 'newest' ? form.sort : 'best';
  const body = { filters, sort: ranked ? sort : sort === 'best' ? 'newest' : sort };
  if (trimmed(form, 'text')) body.text = trimmed(form, 'text');
  if (trimmed(form, 'negative')) body.negative_text = trimmed(form, 'negative');
  if (trimmed(form, 'keywords')) body.keywords = trimmed(form, 'keywords');
  if (imageQuery && imageQuery.id !== undefined) body.image_id = imageQuery.id;
  if (imageQuery && imageQuery.b64) body.image_base64 = imageQuery.b64;
  if (imageQuery && (body.text || body.negative_text)) body.image_weight = Number(form.imageWeight ?? 0.5);
  const min = trimmed(form, 'minScore');
  if (ranked && min && Number.isFinite(Number(min))) body.min_score = Number(min);
  if (ranked && showAll) body.auto_cut = false;
  return body;
}

/** The line above the grid: "42 best matches of 524", "42 of 524 scoring at least 0.25" or "524 images". */
export function countText(reply) {
  const total = reply.total ?? 0;
  const images = `${total.toLocaleString('en-US')} image${total === 1 ? '' : 's'}`;
  const cut = reply.cut || { mode: 'none' };
  const ranked = reply.ranked ?? total;
  if (cut.mode === 'auto' && ranked > total) return `${total.toLocaleString('en-US')} best match${total === 1 ? '' : 'es'} of ${ranked.toLocaleString('en-US')}`;
  if (cut.mode === 'min_score' && ranked > total) return `${total.toLocaleString('en-US')} of ${ranked.toLocaleString('en-US')} scoring at least ${cut.min_score}`;
  return images;
}

/** [field, label, value shown] for each active filter (the chips). Pure, for unit tests. */
export function activeFilters(form) {
  return Object.entries(FILTER_FIELDS)
    .filter(([field]) => trimmed(form, field))
    .map(([field, [label]]) => [field, label, shownValue(field, trimmed(form, field))]);
}

function shownValue(field, value) {
  if (field === 'generator') return GENERATOR_LABELS[value] || value;
  if (field === 'starred') return 'only';
  return value;
}

/** The chip of a scope set from outside the form: a map cluster or a selection opened in the grid. */
export function scopeLabel(scope) {
  if (!scope) return null;
  if (scope.ids) return `Selection: ${scope.ids.length.toLocaleString('en-US')} image${scope.ids.length === 1 ? '' : 's'}`;
  return `Cluster: ${scope.label || (scope.cluster === -1 ? 'unclustered' : `#${scope.cluster}`)}`;
}

export class SearchForm {
  /** @param {(body: object) => void} onSearch */
  constructor(onSearch) {
    this.onSearch = onSearch;
    this.imageQuery = null; // {id} or {b64, label}
    this.scope = null; // {cluster, label} (a map cluster clicked) or {ids} (a selection opened in the grid)
    this.showAll = false; // "Show all": this query without the automatic cut
    this.sortChosen = false; // the user picked a sort: keep it; else best with a query, newest without
    this.form = $('#search-form');
    this.later = debounce(() => this.submit(), TYPING_PAUSE_MS);
    this.form.addEventListener('input', (event) => {
      if (event.target.type !== 'range' && event.target.tagName !== 'SELECT') this.later();
    });
    this.form.addEventListener('change', (event) => {
      if (event.target.id === 'search-sort') this.sortChosen = true;
      if (event.target.tagName === 'SELECT' || event.target.type === 'date' || event.target.type === 'range') this.submit();
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    $('#image-query-clear').addEventListener('click', () => this.setImageQuery(null));
    $('#show-all').addEventListener('click', () => {
      this.showAll = true;
      this.submit({ keepShowAll: true });
    });
    this.watchDrops(document.body);
  }

  values() {
    const value = (id) => $(id).value;
    const form = { text: value('#search-text'), negative: value('#search-negative'), sort: value('#search-sort'), imageWeight: value('#image-weight') };
    for (const [field, [, id]] of Object.entries(FILTER_FIELDS)) form[field] = value(id);
    return form;
  }

  /** Narrow the grid to a map cluster ({cluster, label}) or to a selection ({ids}); null lifts it. */
  setScope(scope) {
    this.scope = scope;
    this.submit();
  }

  /** The filters part of the current query (the map is narrowed by the same filters). */
  filters() {
    return buildQuery(this.values(), null).filters;
  }

  /** Does the form narrow the album (a query or any filter)? Then "no results" is the search's doing. */
  isFiltered() {
    return hasQuery(this.values(), this.imageQuery) || activeFilters(this.values()).length > 0 || Boolean(this.scope);
  }

  /** Empty every filter (and, with `everything`, the query too), then search again. */
  clear({ everything = true } = {}) {
    for (const [, id] of Object.values(FILTER_FIELDS)) $(id).value = '';
    this.scope = null;
    if (everything) {
      $('#search-text').value = '';
      $('#search-negative').value = '';
      this.imageQuery = null;
      $('#image-query').hidden = true;
      $('#drop-hint').hidden = false;
    }
    this.submit();
  }

  /** Best match only while there is something to rank by; the default follows the query unless one was picked. */
  syncSort(form) {
    const select = $('#search-sort');
    const ranked = hasQuery(form, this.imageQuery);
    const best = select.querySelector('option[value="best"]');
    best.disabled = !ranked;
    best.textContent = ranked ? 'best match' : 'best match (needs a query)';
    if (!ranked && select.value === 'best') select.value = 'newest';
    else if (ranked && !this.sortChosen) select.value = 'best';
    else if (!ranked && !this.sortChosen) select.value = 'newest';
  }

  /** The album's own models, LoRAs and generators as pick-lists (GET /albums/{key}/facets). */
  setFacets(facets) {
    const options = (list) => (list || []).map((f) => el('option', { value: f.value, label: `${f.value} (${f.count})` }));
    $('#model-options').replaceChildren(...options(facets.models));
    $('#lora-options').replaceChildren(...options(facets.loras));
    if (facets.generators && facets.generators.length) {
      const select = $('#filter-generator');
      const current = select.value;
      select.replaceChildren(
        el('option', { value: '', text: 'any' }),
        ...facets.generators.map((g) => el('option', { value: g.value, text: `${GENERATOR_LABELS[g.value] || g.value} (${g.count})` })),
      );
      select.value = facets.generators.some((g) => g.value === current) ? current : '';
    }
  }

  renderChips(form) {
    const chips = activeFilters(form);
    const scope = scopeLabel(this.scope);
    const box = $('#filter-chips');
    box.hidden = chips.length === 0 && !scope;
    box.replaceChildren(
      scope &&
        el('button', { type: 'button', class: 'chip', dataset: { field: 'scope' }, title: 'Show the whole album again', onclick: () => this.setScope(null) },
          scope, el('span', { class: 'x', 'aria-hidden': 'true', text: ' ✕' })),
      ...chips.map(([field, label, shown]) =>
        el('button', { type: 'button', class: 'chip', dataset: { field }, title: `Remove ${label.toLowerCase()} filter`, onclick: () => {
          $(FILTER_FIELDS[field][1]).value = '';
          this.submit();
        } }, `${label}: ${shown}`, el('span', { class: 'x', 'aria-hidden': 'true', text: ' ✕' })),
      ),
      el('button', { type: 'button', class: 'link', id: 'filters-clear', onclick: () => this.clear({ everything: false }) }, 'Clear'),
    );
    const active = chips.length + (scope ? 1 : 0);
    $('#filters summary').textContent = active ? `Filters & sort (${active} active)` : 'Filters & sort';
  }

  showError(problem) {
    const line = $('#search-error');
    line.hidden = !problem;
    line.textContent = problem ? problem.message : '';
    for (const [field, [, id]] of Object.entries(FILTER_FIELDS)) $(id).toggleAttribute('aria-invalid', Boolean(problem && problem.field === field));
  }

  submit({ keepShowAll = false } = {}) {
    this.later.cancel(); // Enter after typing: search now, not once more when the pause ends
    if (!keepShowAll) this.showAll = false;
    const form = this.values();
    this.syncSort(form);
    form.sort = $('#search-sort').value;
    this.renderChips(form);
    const problem = validate(form);
    this.showError(problem);
    if (problem) return; // said next to the form; the grid keeps the last good results
    this.onSearch(buildQuery(form, this.imageQuery, { showAll: this.showAll, scope: this.scope }));
  }

  /** `query` is {id, thumbUrl?, label} (more like this), {b64, thumbUrl, label} (dropped file) or null. */
  setImageQuery(query) {
    this.imageQuery = query;
    $('#image-query').hidden = !query;
    $('#drop-hint').hidden = Boolean(query);
    if (query) {
      $('#image-query-label').textContent = query.label;
      $('#image-query-thumb').src = query.thumbUrl || '';
      this.sortChosen = false; // "more like this" means best match first
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
