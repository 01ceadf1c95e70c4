// Album manager: list, add, edit, delete and rebuild (each with an inline confirmation), Update Index, Cancel, live
// progress from the daemon's SSE stream and the files it skipped. Indexing is the daemon's job: closing the panel
// only stops watching, and reopening it picks the progress up again. Update and Rebuild are disabled during a run.

import { el, showResult } from '../lib/dom.js';
import { isActive, isFinal, progressPercent, progressText } from '../lib/progress.js';

// DESIGN.md's album keys; `pattern` compiles with the v flag, where a bare - in a class is an error
const KEY_PATTERN = '[a-z0-9][a-z0-9_\\-]{0,63}';

const countText = (n) => `${(n ?? 0).toLocaleString('en-US')} image${n === 1 ? '' : 's'} indexed`;

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
    if (albums.length === 0) {
      const text = 'No albums yet. An album is one or more folders of images: press Add Album and give it a folder.';
      this.list.append(el('p', { class: 'empty-note', text }));
    }
    for (const album of albums) if (isActive(album.progress)) this.watch(album.key);
    return albums;
  }

  card(album) {
    const card = el('div', { class: 'album', dataset: { key: album.key } });
    const progress = el('progress', { max: '100', hidden: true });
    const progressLine = el('p', { class: 'hint progress-text', dataset: { percent: '' } });
    const skipped = el('ul', { class: 'skipped' });
    card.append(
      el('h3', {}, album.display_name, el('span', { class: 'hint', text: ` (${album.key})` })),
      el('ul', { class: 'hint folders' }, album.folders.map((folder) => el('li', { text: folder }))),
      el('div', { class: 'hint count', text: countText(album.indexed_count) }),
      el(
        'div',
        { class: 'buttons' },
        el('button', { class: 'primary', dataset: { act: 'update' }, onclick: () => this.index(album.key, 'update') }, 'Update Index'),
        el('button', { dataset: { act: 'cancel' }, hidden: true, onclick: () => this.cancel(album.key) }, 'Cancel'),
        el('button', { dataset: { act: 'rebuild' }, onclick: () => this.confirmRebuild(album, card) }, 'Rebuild…'),
        el('button', { dataset: { act: 'edit' }, onclick: () => this.showForm(album) }, 'Edit'),
        el('button', { class: 'danger', dataset: { act: 'delete' }, onclick: () => this.confirmDelete(album, card) }, 'Delete'),
      ),
      progress,
      progressLine,
      skipped,
    );
    if (album.progress) this.showProgress(card, album.progress);
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

  /** Swap the card's buttons for a question and two answers until one is clicked. */
  confirm(card, question, act, label, onYes) {
    const row = card.querySelector('.buttons');
    const saved = [...row.children];
    const restore = () => row.replaceChildren(...saved);
    row.replaceChildren(
      el('span', { class: 'question', text: question }),
      el('button', { class: 'danger', dataset: { act }, onclick: () => (restore(), onYes()) }, label),
      el('button', { dataset: { act: 'cancel-confirm' }, onclick: restore }, 'Cancel'),
    );
  }

  confirmDelete(album, card) {
    this.confirm(card, `Delete "${album.display_name}" and its index? Images stay on disk.`, 'confirm-delete', 'Delete', async () => {
      try {
        await this.getDaemon().delete(`/albums/${encodeURIComponent(album.key)}`);
        await this.reload(`Deleted album "${album.display_name}"`);
      } catch (err) {
        showResult(this.status, false, err.message);
      }
    });
  }

  confirmRebuild(album, card) {
    const question =
      'Rebuild reads every image again, which can take a long time. The current index stays searchable until ' +
      'the new one is ready. Rebuild now?';
    this.confirm(card, question, 'confirm-rebuild', 'Rebuild', () => this.index(album.key, 'rebuild'));
  }

  async reload(message) {
    await this.load();
    showResult(this.status, true, message);
    this.onChange();
  }

  async index(key, mode) {
    const card = this.cardFor(key);
    // forget the last run's "done" at once, so nobody reads it as this run's result
    if (card) this.showProgress(card, { state: 'starting', mode, done: 0, total: 0 });
    try {
      const progress = await this.getDaemon().post(`/albums/${encodeURIComponent(key)}/index`, { mode });
      if (card && progress && progress.state) this.showProgress(card, progress);
    } catch (err) {
      if (card) this.showProgress(card, { state: 'idle' });
      showResult(this.status, false, err.message);
      return;
    }
    this.watch(key);
  }

  /** Stop the run at its next batch; what it committed stays (a cancelled rebuild keeps the old index). */
  async cancel(key) {
    const card = this.cardFor(key);
    const button = card?.querySelector('button[data-act="cancel"]');
    if (button) Object.assign(button, { disabled: true, textContent: 'Cancelling…' });
    try {
      const progress = await this.getDaemon().delete(`/albums/${encodeURIComponent(key)}/index`);
      if (card && progress) this.showProgress(card, progress);
    } catch (err) {
      showResult(this.status, false, err.message);
    } finally {
      if (button) Object.assign(button, { disabled: false, textContent: 'Cancel' });
    }
  }

  /** One progress event on the card: words, bar, live count, skipped files; Update/Rebuild off while running. */
  showProgress(card, event) {
    const bar = card.querySelector('progress');
    const line = card.querySelector('.progress-text');
    const active = isActive(event);
    const percent = progressPercent(event);
    bar.hidden = !(active || isFinal(event));
    if (percent === null) bar.removeAttribute('value'); // indeterminate while the phase has no counts
    else bar.value = percent;
    const showPercent = active && percent !== null;
    line.textContent = event.state === 'idle' ? '' : `${progressText(event)}${showPercent ? ` — ${percent} %` : ''}`;
    line.dataset.percent = percent === null ? '' : String(percent);
    line.dataset.state = event.state;
    line.classList.toggle('error', event.state === 'failed');
    for (const act of ['update', 'rebuild']) {
      const button = card.querySelector(`button[data-act="${act}"]`);
      if (button) {
        button.disabled = active;
        button.title = active ? 'This album is being indexed; wait for it to finish or press Cancel' : '';
      }
    }
    const cancel = card.querySelector('button[data-act="cancel"]');
    if (cancel) cancel.hidden = !active;
    if (event.indexed_count != null) card.querySelector('.count').textContent = countText(event.indexed_count);
    if (event.skipped) this.showSkipped(card, event.skipped);
  }

  /** Follow the album's progress stream until its job ends (or the panel closes). */
  async watch(key) {
    this.watchers.get(key)?.abort();
    const controller = new AbortController();
    this.watchers.set(key, controller);
    const card = this.cardFor(key);
    if (!card) return;
    let sawRunning = false;
    let last = null;
    try {
      for await (const event of this.getDaemon().events(`/albums/${encodeURIComponent(key)}/progress`, controller.signal)) {
        last = event;
        this.showProgress(card, event);
        if (isActive(event)) sawRunning = true;
        if (isFinal(event) || (event.state === 'idle' && sawRunning)) break;
      }
    } catch (err) {
      if (err.name !== 'AbortError') showResult(card.querySelector('.progress-text'), false, err.message);
    } finally {
      if (this.watchers.get(key) === controller) this.watchers.delete(key);
      controller.abort();
    }
    if (last && isFinal(last)) {
      const albums = await this.getDaemon().get('/albums').catch(() => []);
      const album = albums.find((a) => a.key === key);
      if (album) card.querySelector('.count').textContent = countText(album.indexed_count);
      this.onChange();
    }
  }

  showSkipped(card, skipped) {
    const list = card.querySelector('.skipped');
    list.replaceChildren(...skipped.map((s) => el('li', { text: `${s.path}: ${s.reason}` })));
  }
}
