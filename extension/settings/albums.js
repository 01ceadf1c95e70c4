// Album manager: list, add, edit, delete and rebuild (each with an inline confirmation), Update Index, Cancel, live
// progress from the daemon's SSE stream and the files it skipped. Indexing is the daemon's job: closing the panel
// only stops watching, and reopening it picks the progress up again. Update and Rebuild are disabled during a run.
//
// An album's images come from folders or from the InvokeAI server's boards (DESIGN §11). A board album is synced by
// the daemon on its own (new, moved and starred images), and paused while the server is away: the view looks at the
// album list every few seconds while it is open and such an album exists, so those runs and pauses show by themselves.

import { el, showResult } from '../lib/dom.js';
import { isActive, isFinal, progressPercent } from '../lib/progress.js';
import {
  BoardPicker,
  SOURCE_BOARDS,
  SOURCE_FOLDERS,
  boardNames,
  boardSummary,
  cardProgressText,
  isBoardAlbum,
  isPaused,
  sameBoards,
  skippedText,
} from './album-boards.js';

// DESIGN.md's album keys; `pattern` compiles with the v flag, where a bare - in a class is an error
const KEY_PATTERN = '[a-z0-9][a-z0-9_\\-]{0,63}';
// The daemon re-checks a paused server every 4 s and polls a followed board album at most 4 s apart: looking at the
// album list as often shows its runs and pauses as soon as they happen, at one small local request per look.
const FOLLOW_MS = 4000;

const countText = (n) => `${(n ?? 0).toLocaleString('en-US')} image${n === 1 ? '' : 's'} indexed`;

const folderList = (text) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

export class AlbumManager {
  /**
   * @param {HTMLElement} root @param {() => any} getDaemon @param {() => void} onChange  album list changed
   * @param {{openSettings?: () => void}} [hooks]  openSettings: show the Settings view (default: click its tab)
   */
  constructor(root, getDaemon, onChange, hooks = {}) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.onChange = onChange;
    this.openSettings = hooks.openSettings || (() => document.querySelector('.tabs button[data-view="settings"]')?.click());
    this.watchers = new Map(); // album key -> AbortController of its progress stream
    this.starting = new Set(); // album keys whose Update/Rebuild has been asked for but not answered yet
    this.names = null; // board id -> name from the InvokeAI server; null until (or unless) it answered
    this.picker = null; // the open form's board choices
    this.followTimer = null;
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
      const text =
        'No albums yet. An album is one or more folders of images, or boards of your InvokeAI server: ' +
        'press Add Album and choose where its images come from.';
      this.list.append(el('p', { class: 'empty-note', text }));
    }
    for (const album of albums) if (isActive(album.progress)) this.watch(album.key);
    if (albums.some(isBoardAlbum)) this.loadBoardNames(); // cards first: a server that is away may take a while
    // Back from Settings with the form still open: the boards it could not list may be there now.
    const picker = this.picker;
    if (picker && picker.root.isConnected && !picker.root.hidden && !picker.loaded) picker.load();
    this.follow(albums);
    return albums;
  }

  /** Fill in the board names on the cards once the server has listed them; keep the last names if it is away. */
  async loadBoardNames() {
    try {
      this.names = boardNames(await this.getDaemon().get('/invokeai/boards'));
    } catch (err) {
      for (const line of this.list.querySelectorAll('.album .boards')) line.title = `Board names unavailable: ${err.message}`;
      return;
    }
    for (const card of this.list.querySelectorAll('.album[data-source="invokeai"]')) {
      const line = card.querySelector('.boards');
      line.textContent = boardSummary(JSON.parse(card.dataset.boards), this.names);
      line.removeAttribute('title');
    }
  }

  card(album) {
    const board = isBoardAlbum(album);
    const card = el('div', {
      class: 'album',
      dataset: { key: album.key, source: board ? SOURCE_BOARDS : SOURCE_FOLDERS, watch: String(album.watch), boards: JSON.stringify(album.boards || []) },
    });
    const progress = el('progress', { max: '100', hidden: true });
    const progressLine = el('p', { class: 'hint progress-text', dataset: { percent: '' } });
    const skipped = el('ul', { class: 'skipped' });
    const source = board
      ? el('p', { class: 'hint boards', text: boardSummary(album.boards, this.names) })
      : el('ul', { class: 'hint folders' }, album.folders.map((folder) => el('li', { text: folder })));
    card.append(
      el('h3', {}, album.display_name, el('span', { class: 'hint', text: ` (${album.key})` })),
      source,
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
    const folderField = el('label', { class: 'folders-field' }, 'Image folder(s), one per line', folders);
    const boards = new BoardPicker(this, album?.boards || []);
    this.picker = boards;
    const watch = el('input', { name: 'watch', type: 'checkbox', checked: album ? album.watch : true });
    const watchText = el('span', {});
    const message = el('p', { id: 'album-form-message', class: 'hint', role: 'status' });
    let source = isBoardAlbum(album) ? SOURCE_BOARDS : SOURCE_FOLDERS;
    const showSource = () => {
      const board = source === SOURCE_BOARDS;
      form.dataset.source = source;
      folderField.hidden = board;
      folders.required = !board; // a hidden required field would block Save without saying why
      boards.root.hidden = !board;
      watchText.textContent = board
        ? ' Follow the server: new, deleted, moved and starred images come in by themselves'
        : ' Watch folders for new images';
      if (board) boards.load();
    };
    const sourceChoice = (value, label) =>
      el('label', {}, el('input', {
        type: 'radio', name: 'source', value, checked: value === source,
        onchange: () => ((source = value), showSource()),
      }), ` ${label}`); // fmt: skip
    // An album's source stays what it was made with: the daemon edits boards or folders, never one into the other.
    const sourceField = album
      ? el('p', { class: 'hint album-source-fixed', text: `Images from ${isBoardAlbum(album) ? 'InvokeAI boards' : 'image folders'}` })
      : el('fieldset', { class: 'album-source' }, el('legend', { text: 'Images from' }),
          sourceChoice(SOURCE_FOLDERS, 'Image folders'), sourceChoice(SOURCE_BOARDS, 'InvokeAI boards')); // fmt: skip
    const form = el(
      'form',
      { id: 'album-form', class: 'form' },
      el('label', {}, 'Key (a-z, 0-9, - and _)', key),
      el('label', {}, 'Display name', name),
      sourceField,
      folderField,
      boards.root,
      el('label', {}, el('span', {}, watch, watchText)),
      el('div', { class: 'buttons' }, el('button', { type: 'submit', class: 'primary' }, 'Save'),
        el('button', { type: 'button', onclick: () => form.remove() }, 'Cancel')),
      message,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { display_name: name.value.trim(), watch: watch.checked };
      let resyncs; // the daemon indexes a new album, or an edited one whose folders or boards changed
      if (source === SOURCE_BOARDS) {
        const chosen = boards.chosen();
        if (!album) Object.assign(body, { source: SOURCE_BOARDS, boards: chosen });
        else if (!sameBoards(chosen, album.boards)) body.boards = chosen;
        resyncs = !album || Boolean(body.boards);
      } else {
        body.folders = folderList(folders.value);
        if (album && body.folders.join('\n') === album.folders.join('\n')) delete body.folders;
        resyncs = !album || Boolean(body.folders);
      }
      message.textContent = '';
      try {
        if (album) await this.getDaemon().patch(`/albums/${encodeURIComponent(album.key)}`, body);
        else await this.getDaemon().post('/albums', { key: key.value.trim(), ...body });
      } catch (err) {
        showResult(message, false, err.message); // the daemon's 422/409/502 message, as it is
        return;
      }
      form.remove();
      await this.reload(`Saved album "${body.display_name}"`);
      if (resyncs) this.watch(album ? album.key : key.value.trim());
    });
    this.list.after(form);
    showSource();
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
    const kept = isBoardAlbum(album) ? 'Images stay on the InvokeAI server.' : 'Images stay on disk.';
    this.confirm(card, `Delete "${album.display_name}" and its index? ${kept}`, 'confirm-delete', 'Delete', async () => {
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
    this.starting.add(key);
    try {
      const progress = await this.getDaemon().post(`/albums/${encodeURIComponent(key)}/index`, { mode });
      if (card && progress && progress.state) this.showProgress(card, progress);
    } catch (err) {
      if (card) this.showProgress(card, { state: 'idle' });
      showResult(this.status, false, err.message);
      return;
    } finally {
      this.starting.delete(key);
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
    const { source, watch } = card.dataset;
    const active = isActive(event);
    const paused = isPaused(source, event);
    const percent = progressPercent(event);
    bar.hidden = paused || !(active || isFinal(event)); // a paused album has no bar to fill
    if (percent === null) bar.removeAttribute('value'); // indeterminate while the phase has no counts
    else bar.value = percent;
    const showPercent = active && percent !== null;
    line.textContent = event.state === 'idle' ? '' : `${cardProgressText(source, watch === 'true', event)}${showPercent ? ` — ${percent} %` : ''}`;
    line.dataset.percent = percent === null ? '' : String(percent);
    line.dataset.state = event.state;
    line.dataset.paused = String(paused);
    line.classList.toggle('error', event.state === 'failed' && !paused);
    line.classList.toggle('paused', paused);
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
    if (!this.cardFor(key)) return;
    let sawRunning = false;
    let last = null;
    try {
      for await (const event of this.getDaemon().events(`/albums/${encodeURIComponent(key)}/progress`, controller.signal)) {
        last = event;
        const card = this.cardFor(key); // the list may have been redrawn meanwhile
        if (card) this.showProgress(card, event);
        if (isActive(event)) sawRunning = true;
        if (isFinal(event) || (event.state === 'idle' && sawRunning)) break;
      }
    } catch (err) {
      const line = this.cardFor(key)?.querySelector('.progress-text');
      if (err.name !== 'AbortError' && line) showResult(line, false, err.message);
    } finally {
      if (this.watchers.get(key) === controller) this.watchers.delete(key);
      controller.abort();
    }
    if (last && isFinal(last)) {
      const albums = await this.getDaemon().get('/albums').catch(() => []);
      const album = albums.find((a) => a.key === key);
      const card = this.cardFor(key);
      if (album && card) card.querySelector('.count').textContent = countText(album.indexed_count);
      this.onChange();
      if (albums.length) this.follow(albums); // a run that failed may have paused a board album
    }
  }

  /**
   * While the view is open, look at the album list every FOLLOW_MS when a board album may change by itself (it
   * follows its server, or it is paused until the server answers): a run that starts shows on its card (and clears
   * "Paused"), a pause shows as it happens. Only runs hold a stream open: the browser has few connections per host.
   */
  follow(albums) {
    clearTimeout(this.followTimer);
    this.followTimer = null;
    const changesByItself = (album) => isBoardAlbum(album) && (album.watch || isPaused(SOURCE_BOARDS, album.progress));
    if (!albums.some(changesByItself)) return;
    this.followTimer = setTimeout(() => this.lookAgain(), FOLLOW_MS);
  }

  async lookAgain() {
    this.followTimer = null;
    if (this.root.hidden || !this.root.isConnected) return; // showView's load() starts following again
    let albums;
    try {
      albums = await this.getDaemon().get('/albums');
    } catch {
      // the daemon is restarting or the panel is reconnecting: look again later
      if (this.followTimer === null) this.followTimer = setTimeout(() => this.lookAgain(), FOLLOW_MS);
      return;
    }
    for (const album of albums) {
      const card = this.cardFor(album.key);
      if (!card || !isBoardAlbum(album) || this.watchers.has(album.key) || this.starting.has(album.key)) continue;
      this.showProgress(card, { ...album.progress, indexed_count: album.indexed_count });
      if (isActive(album.progress)) this.watch(album.key);
    }
    if (this.followTimer === null) this.follow(albums); // load() may have started a newer timer meanwhile
  }

  showSkipped(card, skipped) {
    const list = card.querySelector('.skipped');
    list.replaceChildren(...skipped.map((s) => el('li', { text: skippedText(s) })));
  }
}
