// Album manager: list, add, edit, delete (with an inline confirmation), Update Index / Rebuild with live progress
// from the daemon's SSE stream and the files it skipped. Indexing is the daemon's job: closing the panel only stops
// watching, and reopening it picks the progress up again.

import { el, showResult } from '../lib/dom.js';

// DESIGN.md's album keys; `pattern` compiles with the v flag, where a bare - in a class is an error
const KEY_PATTERN = '[a-z0-9][a-z0-9_\\-]{0,63}';

/** "phase 40/120 (12.5/s, ~6 s left)" for a progress event. Pure, for unit tests. */
export function progressText(event) {
  if (event.state === 'failed' || event.state === 'cancelled') {
    return `${event.state === 'failed' ? 'Failed' : 'Cancelled'}: ${event.message || 'no details'}`;
  }
  if (event.state === 'done') return `Done: ${event.done}/${event.total} images${event.message ? ` — ${event.message}` : ''}`;
  if (event.state === 'idle') return 'Idle';
  const parts = [`${event.phase || 'indexing'} ${event.done}/${event.total}`];
  if (event.rate) parts.push(`${event.rate.toFixed(1)}/s`);
  if (event.eta_s != null && event.state === 'running') parts.push(`~${Math.ceil(event.eta_s)} s left`);
  return parts.length > 1 ? `${parts[0]} (${parts.slice(1).join(', ')})` : parts[0];
}

export function progressPercent(event) {
  if (event.state === 'done') return 100;
  return event.total > 0 ? Math.min(100, Math.round((100 * event.done) / event.total)) : 0;
}

const folderList = (text) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

export class AlbumManager {
  /** @param {HTMLElement} root @param {() => any} getDaemon @param {() => void} onChange  album list changed */
  constructor(root, getDaemon, onChange) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.onChange = onChange;
    this.watchers = new Map(); // album key -> AbortController of its progress stream
    this.list = el('div', { id: 'album-list' });
    this.status = el('p', { id: 'album-status', class: 'hint', role: 'status' });
    root.append(
      el('h2', { text: 'Albums' }),
      this.list,
      el('button', { id: 'album-add', class: 'primary', onclick: () => this.showForm(null) }, 'Add Album'),
      this.status,
    );
  }

  async load() {
    const albums = await this.getDaemon().get('/albums');
    this.list.replaceChildren(...albums.map((album) => this.card(album)));
    for (const album of albums) if (album.progress && ['running', 'queued'].includes(album.progress.state)) this.watch(album.key);
    return albums;
  }

  card(album) {
    const card = el('div', { class: 'album', dataset: { key: album.key } });
    const progress = el('progress', { max: '100', value: '0', hidden: true });
    const progressLine = el('p', { class: 'hint progress-text', dataset: { percent: '' } });
    const skipped = el('ul', { class: 'skipped' });
    card.append(
      el('h3', {}, album.display_name, el('span', { class: 'hint', text: ` (${album.key})` })),
      el('div', { class: 'hint', text: album.folders.join('\n') }),
      el('div', { class: 'hint count', text: `${album.indexed_count ?? 0} images indexed` }),
      el(
        'div',
        { class: 'buttons' },
        el('button', { class: 'primary', dataset: { act: 'update' }, onclick: () => this.index(album.key, 'update') }, 'Update Index'),
        el('button', { dataset: { act: 'rebuild' }, onclick: () => this.index(album.key, 'rebuild') }, 'Rebuild'),
        el('button', { dataset: { act: 'edit' }, onclick: () => this.showForm(album) }, 'Edit'),
        el('button', { class: 'danger', dataset: { act: 'delete' }, onclick: () => this.confirmDelete(album, card) }, 'Delete'),
      ),
      progress,
      progressLine,
      skipped,
    );
    return card;
  }

  cardFor(key) {
    return [...this.list.children].find((card) => card.dataset.key === key);
  }

  showForm(album) {
    this.root.querySelector('#album-form')?.remove();
    const key = el('input', { name: 'key', required: true, pattern: KEY_PATTERN, value: album?.key, disabled: Boolean(album) });
    const name = el('input', { name: 'display_name', required: true, value: album?.display_name });
    const folders = el('textarea', { name: 'folders', rows: '3', required: true, placeholder: '/home/you/invokeai/outputs/images' });
    folders.value = album ? album.folders.join('\n') : '';
    const watch = el('input', { name: 'watch', type: 'checkbox', checked: album ? album.watch : true });
    const message = el('p', { class: 'hint', role: 'status' });
    const form = el(
      'form',
      { id: 'album-form', class: 'form' },
      el('label', {}, 'Key (a-z, 0-9, - and _)', key),
      el('label', {}, 'Display name', name),
      el('label', {}, 'Image folder(s), one per line', folders),
      el('label', {}, el('span', {}, watch, ' Watch folders for new images')),
      el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'primary' }, 'Save'),
        el('button', { type: 'button', onclick: () => form.remove() }, 'Cancel')),
      message,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { display_name: name.value.trim(), folders: folderList(folders.value), watch: watch.checked };
      if (album && body.folders.join('\n') === album.folders.join('\n')) delete body.folders; // new folders re-index
      try {
        if (album) await this.getDaemon().patch(`/albums/${encodeURIComponent(album.key)}`, body);
        else await this.getDaemon().post('/albums', { key: key.value.trim(), ...body });
      } catch (err) {
        showResult(message, false, err.message);
        return;
      }
      form.remove();
      await this.reload(`Saved album "${body.display_name}"`);
      // the daemon indexes a new album, or an edited one whose folders changed
      if (!album || body.folders) this.watch(album ? album.key : key.value.trim());
    });
    this.list.after(form);
    (album ? name : key).focus();
  }

  confirmDelete(album, card) {
    const row = card.querySelector('.buttons');
    const saved = [...row.children];
    row.replaceChildren(
      el('span', { text: `Delete "${album.display_name}" and its index? Images stay on disk.` }),
      el('button', { class: 'danger', dataset: { act: 'confirm-delete' }, onclick: async () => {
        try {
          await this.getDaemon().delete(`/albums/${encodeURIComponent(album.key)}`);
          await this.reload(`Deleted album "${album.display_name}"`);
        } catch (err) {
          showResult(this.status, false, err.message);
        }
      } }, 'Delete'),
      el('button', { onclick: () => row.replaceChildren(...saved) }, 'Cancel'),
    );
  }

  async reload(message) {
    await this.load();
    showResult(this.status, true, message);
    this.onChange();
  }

  async index(key, mode) {
    const line = this.cardFor(key)?.querySelector('.progress-text');
    if (line) {
      // forget the last run's "done" at once, so nobody reads it as this run's result
      Object.assign(line.dataset, { state: 'starting', percent: '0' });
      line.textContent = mode === 'rebuild' ? 'Starting rebuild…' : 'Starting update…';
    }
    try {
      await this.getDaemon().post(`/albums/${encodeURIComponent(key)}/index`, { mode });
    } catch (err) {
      showResult(this.status, false, err.message);
      return;
    }
    this.watch(key);
  }

  /** Follow the album's progress stream until its job ends (or the panel closes). */
  async watch(key) {
    this.watchers.get(key)?.abort();
    const controller = new AbortController();
    this.watchers.set(key, controller);
    const card = this.cardFor(key);
    if (!card) return;
    const bar = card.querySelector('progress');
    const line = card.querySelector('.progress-text');
    bar.hidden = false;
    let sawRunning = false;
    try {
      for await (const event of this.getDaemon().events(`/albums/${encodeURIComponent(key)}/progress`, controller.signal)) {
        const percent = progressPercent(event);
        bar.value = percent;
        line.textContent = `${progressText(event)} — ${percent} %`;
        line.dataset.percent = String(percent);
        line.dataset.state = event.state;
        this.showSkipped(card, event.skipped || []);
        if (event.state === 'running') sawRunning = true;
        if (['done', 'failed', 'cancelled'].includes(event.state) || (event.state === 'idle' && sawRunning)) break;
      }
    } catch (err) {
      if (err.name !== 'AbortError') line.textContent = err.message;
    } finally {
      if (this.watchers.get(key) === controller) this.watchers.delete(key);
      controller.abort();
    }
    if (line.dataset.state === 'done') {
      const albums = await this.getDaemon().get('/albums').catch(() => []);
      const album = albums.find((a) => a.key === key);
      if (album) card.querySelector('.count').textContent = `${album.indexed_count ?? 0} images indexed`;
      this.onChange();
    }
  }

  showSkipped(card, skipped) {
    const list = card.querySelector('.skipped');
    list.replaceChildren(...skipped.map((s) => el('li', { text: `${s.path}: ${s.reason}` })));
  }
}
