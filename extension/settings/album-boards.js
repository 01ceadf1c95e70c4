// Board albums in the Albums view (DESIGN §11, the daemon's contract in issue 13): the form's board choices, board
// names on the cards and the paused state. The functions are pure, for unit tests; BoardPicker is the form's part.

import { el, showResult } from '../lib/dom.js';
import { PHASE_WORDS, progressText } from '../lib/progress.js';

// The daemon's words (api13 §1): an album's source, and the board "ids" that are not InvokeAI ids.
export const SOURCE_FOLDERS = 'folders';
export const SOURCE_BOARDS = 'invokeai';
export const ALL_BOARDS = 'all';
export const UNCATEGORIZED = 'none';
const UNCATEGORIZED_NAME = 'Uncategorized';

// A board album's run lists boards and drops images gone from them, it does not scan files.
const BOARD_PHASE_WORDS = Object.freeze({
  scanning: 'Listing the InvokeAI boards',
  removing: 'Removing images that left the boards',
});

export const isBoardAlbum = (album) => Boolean(album) && album.source === SOURCE_BOARDS;

/** GET /invokeai/boards as checkbox choices: Uncategorized (board_id null, sent as "none") first, then the boards. */
export function boardChoices(boards) {
  const choices = [{ value: UNCATEGORIZED, name: UNCATEGORIZED_NAME }];
  for (const board of boards) {
    if (board.board_id !== null && board.board_id !== undefined) choices.push({ value: board.board_id, name: board.board_name });
  }
  return choices;
}

/** Board id -> name, for the cards; Uncategorized is always known. */
export function boardNames(boards) {
  return new Map(boardChoices(boards).map((choice) => [choice.value, choice.name]));
}

/** The `boards` the daemon gets from the form: ["all"] alone when All is ticked, else the ticked ids in order. */
export function boardsBody(all, ticked) {
  return all ? [ALL_BOARDS] : [...ticked];
}

/** Same boards, in any order: an edit that keeps them must not send them (a new list re-syncs the album). */
export function sameBoards(a, b) {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((board) => right.has(board));
}

const shortId = (id) => (id.length > 12 ? `${id.slice(0, 8)}…` : id);

/**
 * One board as a user knows it. `names`: from the server (null while unknown or unreachable). A board the server no
 * longer lists for this user is said so, rather than shown as a bare id.
 */
export function boardLabel(id, names) {
  if (id === UNCATEGORIZED) return UNCATEGORIZED_NAME;
  const name = names?.get(id);
  if (name !== undefined) return name;
  return names ? `a board InvokeAI no longer shows (${shortId(id)})` : `board ${shortId(id)}`;
}

/** The card's source line of a board album: "InvokeAI boards: PhotoMap Refs, Uncategorized" or "All InvokeAI boards". */
export function boardSummary(boards, names) {
  if (boards.length === 1 && boards[0] === ALL_BOARDS) return 'All InvokeAI boards (and Uncategorized)';
  // Uncategorized is not a board one picks by name: it reads best last ("Refs, Sketches, Uncategorized")
  const ordered = [...boards.filter((id) => id !== UNCATEGORIZED), ...boards.filter((id) => id === UNCATEGORIZED)];
  const labels = ordered.map((id) => boardLabel(id, names));
  return `InvokeAI board${labels.length === 1 ? '' : 's'}: ${labels.join(', ')}`;
}

/** A board album whose last run failed is paused: the daemon syncs it again once the server answers (api13 §3). */
export const isPaused = (source, event) => source === SOURCE_BOARDS && Boolean(event) && event.state === 'failed';

/**
 * The progress line of a card. Board albums: "Paused: <the daemon's message>" with what happens next, and the
 * phases in board words; folder albums: progress.js's words as they are.
 */
export function cardProgressText(source, watch, event) {
  if (isPaused(source, event)) {
    const next = watch ? 'PhotoMap syncs again once InvokeAI answers' : 'press Update Index to try again';
    return `Paused: ${event.message || 'no details'} (${next})`;
  }
  const text = progressText(event);
  const boardWords = source === SOURCE_BOARDS && event.state === 'running' ? BOARD_PHASE_WORDS[event.phase] : undefined;
  return boardWords ? text.replace(PHASE_WORDS[event.phase], boardWords) : text;
}

/** A skipped file of a board album has the pseudo-path `invokeai:<image_name>`: name the image, not a path. */
export function skippedText(skipped) {
  const where = skipped.path.startsWith('invokeai:') ? `InvokeAI image ${skipped.path.slice('invokeai:'.length)}` : skipped.path;
  return `${where}: ${skipped.reason}`;
}


/**
 * The board choices of the album form: "All boards (and Uncategorized)", Uncategorized and the server's boards as
 * checkboxes. All and Uncategorized need no server, so they stay offered when it can't be reached (the album then
 * syncs once it answers); the server's message and where to fix it show above them.
 */
export class BoardPicker {
  /**
   * @param {{getDaemon: () => any, openSettings: () => void, names: Map<string, string> | null}} manager  the album
   *   manager: its daemon, the way to Settings, and the board names it shows on the cards (refreshed from here)
   * @param {string[]} initial  the album's boards when editing, [] for a new album
   */
  constructor(manager, initial) {
    this.manager = manager;
    this.initial = initial;
    this.loaded = false;
    this.loading = null;
    this.status = el('p', { class: 'hint board-status', role: 'status' });
    this.help = el('p', { class: 'hint board-help', hidden: true });
    this.all = el('input', { type: 'checkbox', name: 'board', value: ALL_BOARDS, checked: initial.includes(ALL_BOARDS), onchange: () => this.showAll() });
    this.list = el('div', { class: 'board-list' });
    this.root = el(
      'fieldset',
      { id: 'album-boards', class: 'board-choices', hidden: true },
      el('legend', { text: 'InvokeAI boards (from the server set in Settings)' }),
      this.status,
      this.help,
      el('label', { class: 'board-all' }, this.all, ' All boards (and Uncategorized)'),
      this.list,
    );
  }

  /** Ask the daemon for the server's boards once per form (again only through "Try again"). */
  load() {
    if (!this.loaded && !this.loading) this.loading = this.fetch().finally(() => (this.loading = null));
    return this.loading;
  }

  async fetch() {
    this.status.textContent = 'Loading the boards from InvokeAI…';
    this.status.classList.remove('error', 'ok');
    this.help.hidden = true;
    let choices;
    let failure = null;
    try {
      const boards = await this.manager.getDaemon().get('/invokeai/boards');
      this.manager.names = boardNames(boards);
      choices = boardChoices(boards);
      this.loaded = true;
    } catch (err) {
      failure = err;
      choices = boardChoices([]);
    }
    const ticked = new Set(this.rendered() ? this.ticked() : this.initial);
    // Boards of this album the server no longer lists for this user: shown ticked, so unticking drops them.
    for (const id of ticked) {
      if (id !== ALL_BOARDS && !choices.some((choice) => choice.value === id)) {
        choices.push({ value: id, name: boardLabel(id, this.manager.names) });
      }
    }
    this.list.replaceChildren(
      ...choices.map((choice) =>
        el('label', {}, el('input', { type: 'checkbox', name: 'board', value: choice.value, checked: ticked.has(choice.value) }), ` ${choice.name}`),
      ),
    );
    this.list.dataset.ready = 'true';
    this.showAll();
    if (failure) this.showFailure(failure);
    else this.status.textContent = choices.length > 1 ? '' : 'This InvokeAI user has no boards yet: only Uncategorized.';
  }

  showFailure(err) {
    showResult(this.status, false, err.message);
    const where =
      err.code === 'invokeai_not_configured'
        ? 'Set the InvokeAI Backend URL in Settings, then come back here.'
        : 'Check the InvokeAI Backend URL (and the login, if the server has accounts) in Settings.';
    this.help.replaceChildren(
      `${where} You can still choose All boards or Uncategorized: the album syncs once the server answers. `,
      el('button', { type: 'button', class: 'link', dataset: { act: 'open-settings' }, onclick: () => this.manager.openSettings() }, 'Open Settings'),
      ' · ',
      el('button', { type: 'button', class: 'link', dataset: { act: 'reload-boards' }, onclick: () => this.load() }, 'Try again'),
    );
    this.help.hidden = false;
  }

  rendered() {
    return this.list.dataset.ready === 'true';
  }

  ticked() {
    return [...this.list.querySelectorAll('input:checked')].map((input) => input.value);
  }

  /** All includes every board: the others are greyed (and kept as ticked, should All be unticked again). */
  showAll() {
    for (const input of this.list.querySelectorAll('input')) input.disabled = this.all.checked;
    this.list.classList.toggle('covered', this.all.checked);
  }

  chosen() {
    return boardsBody(this.all.checked, this.rendered() ? this.ticked() : this.initial.filter((id) => id !== ALL_BOARDS));
  }
}
