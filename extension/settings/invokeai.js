// InvokeAI settings: the backend URL is saved as typed and probed while typing (debounced); the hint under it turns
// red with the daemon's message on failure. Username, password and board appear only after a good probe. The
// password field is never filled from the daemon (it only says whether one is set).

import { debounce, el, showResult } from '../lib/dom.js';
import { LOCAL } from '../lib/messages.js';

const PROBE_PAUSE_MS = 500; // probe once typing pauses: every probe is a network round trip to InvokeAI
const UNCATEGORIZED = ''; // <option> value for board_id null

export class InvokeAISettings {
  /** @param {HTMLElement} root  @param {() => import('../lib/daemon.js').Daemon} getDaemon */
  constructor(root, getDaemon) {
    this.getDaemon = getDaemon;
    this.sequence = 0; // only the newest probe's answer may change the form
    this.typed = false; // the URL field holds text the daemon has not saved yet: a load must not overwrite it
    this.url = el('input', { id: 'invokeai-url', type: 'url', placeholder: 'http://localhost:9090', spellcheck: 'false' });
    this.hint = el('p', { id: 'invokeai-url-hint', class: 'hint url-hint', role: 'status' });
    this.username = el('input', { id: 'invokeai-username', autocomplete: 'off' });
    this.password = el('input', { id: 'invokeai-password', type: 'password', autocomplete: 'new-password' });
    this.passwordState = el('span', { id: 'invokeai-password-state', class: 'hint' });
    this.board = el('select', { id: 'invokeai-board' });
    this.attach = el('input', { id: 'invokeai-attach', type: 'checkbox' });
    this.saved = el('p', { id: 'invokeai-saved', class: 'hint', role: 'status' });
    this.accountHint = el('p', { id: 'invokeai-account-hint', class: 'hint' });
    this.actionsHint = el('ul', { id: 'invokeai-actions-hint', class: 'hint actions-hint' });
    this.authRows = el(
      'div',
      { id: 'invokeai-auth-rows', class: 'form', hidden: true },
      this.accountHint,
      el('label', {}, 'InvokeAI Username', this.username),
      el('label', {}, 'InvokeAI Password', this.password, this.passwordState),
      el('label', {}, 'Upload to Image Board', this.board),
      el('label', {}, el('span', {}, this.attach, ' Also add Use as Ref Image uploads to the current generation (InvokeAI 6.13+)')),
    );
    root.append(
      el('h2', { text: 'InvokeAI' }),
      el('div', { class: 'form' }, el('label', {}, 'InvokeAI Backend URL', this.url), this.hint, this.actionsHint),
      this.authRows,
      this.saved,
    );
    const probeLater = debounce(() => this.save({}), PROBE_PAUSE_MS);
    this.url.addEventListener('input', () => {
      this.typed = true;
      this.sequence += 1; // a probe already in flight is now stale
      this.showProbe({ ok: false, message: '' });
      this.hint.textContent = 'Checking…';
      probeLater();
    });
    this.username.addEventListener('change', () => this.save({ username: this.username.value }));
    this.password.addEventListener('change', () => this.savePassword());
    this.board.addEventListener('change', () => this.saveBoard());
    this.attach.addEventListener('change', () => this.save({ attach_ref_images: this.attach.checked }));
  }

  /** Tell the worker the saved URL, so it can enable the panel on InvokeAI tabs before Settings is ever opened. */
  async syncUrl() {
    const current = await this.getDaemon().get('/settings/invokeai');
    await chrome.storage.local.set({ [LOCAL.INVOKEAI_URL]: current.url || '' });
  }

  async load() {
    // The panel loads Settings once connected and again when the tab opens: a load that starts after the user began
    // typing would put the saved URL back over the typed one (and make its pending save stale).
    if (this.typed) return;
    const asked = ++this.sequence;
    const current = await this.getDaemon().get('/settings/invokeai');
    if (asked !== this.sequence) return; // the user started typing meanwhile: don't overwrite the field
    this.url.value = current.url || '';
    this.username.value = current.username || '';
    this.attach.checked = Boolean(current.attach_ref_images);
    await chrome.storage.local.set({ [LOCAL.INVOKEAI_URL]: current.url || '' });
    this.showPasswordState(current.password_set);
    this.boardId = current.board_id ?? null;
    const sequence = ++this.sequence;
    const probe = current.url ? await this.getDaemon().get('/invokeai/probe') : { ok: false, message: '' };
    if (sequence !== this.sequence) return; // the user started typing meanwhile
    this.showProbe(probe);
    if (probe.ok) await this.loadBoards(sequence);
  }

  /** PUT the URL as typed plus `changes`; render the probe that comes back. */
  async save(changes) {
    const sequence = ++this.sequence;
    const url = this.url.value;
    await chrome.storage.local.set({ [LOCAL.INVOKEAI_URL]: url }); // lets the worker match InvokeAI tabs
    let reply;
    try {
      reply = await this.getDaemon().put('/settings/invokeai', { url, ...changes });
    } catch (err) {
      if (sequence === this.sequence) this.showProbe({ ok: false, message: err.message });
      return null; // not saved: the typed URL stays the user's, no load may replace it
    }
    if (sequence !== this.sequence) return reply;
    // Only now does the daemon have it: a load that ran while the PUT was in flight would have read the old URL.
    this.typed = false;
    this.showPasswordState(reply.password_set);
    this.boardId = reply.board_id ?? null;
    this.showProbe(reply.probe);
    if (reply.probe.ok) await this.loadBoards(sequence);
    return reply;
  }

  async saveBoard() {
    const boardId = this.board.value === UNCATEGORIZED ? null : this.board.value;
    try {
      const reply = await this.getDaemon().put('/invokeai/board', { board_id: boardId });
      this.boardId = reply.board_id ?? null;
      showResult(this.saved, true, `Uploads go to "${this.board.selectedOptions[0].textContent}"`);
    } catch (err) {
      showResult(this.saved, false, err.message);
    }
  }

  async savePassword() {
    const password = this.password.value;
    this.password.value = ''; // never keep (or show) the secret in the page once it has been handed to the daemon
    await this.save({ username: this.username.value, password });
  }

  showPasswordState(isSet) {
    this.password.placeholder = isSet ? 'set' : '';
    this.passwordState.textContent = isSet ? 'Password is set (type to replace it)' : '';
    this.password.dataset.set = isSet ? 'true' : 'false';
  }

  showProbe(probe) {
    const ok = Boolean(probe.ok);
    this.hint.textContent = ok
      ? `Connected to InvokeAI${probe.version ? ` ${probe.version}` : ''}${probe.multiuser ? ' (multi-user)' : ''}`
      : probe.message || '';
    this.hint.classList.toggle('error', !ok && Boolean(probe.message));
    this.hint.classList.toggle('ok', ok);
    this.authRows.hidden = !ok;
    if (!ok) this.clearSaved(); // an error about the last server is stale once the URL changes
    this.accountHint.textContent =
      probe.multiuser === false
        ? 'This InvokeAI runs single-user: leave username and password blank.'
        : probe.multiuser
          ? 'This InvokeAI has user accounts: log in with your InvokeAI email address and password.'
          : '';
    // what this server's version can't do, with the daemon's reason (e.g. "Recall needs InvokeAI 6.12 or newer")
    const missing = Object.values((ok && probe.actions) || {}).filter((a) => a && a.available === false && a.reason);
    this.actionsHint.replaceChildren(...missing.map((a) => el('li', { text: a.reason })));
    const append = ok && probe.actions && probe.actions.append;
    this.attach.disabled = Boolean(append && append.available === false);
    this.attach.title = this.attach.disabled ? append.reason : '';
  }

  clearSaved() {
    this.saved.textContent = '';
    this.saved.classList.remove('ok', 'error');
  }

  /** @param {number} sequence  the save or load this list belongs to: only the newest one's answer may show */
  async loadBoards(sequence) {
    let boards;
    let failure = null;
    try {
      boards = await this.getDaemon().get('/invokeai/boards');
    } catch (err) {
      boards = [{ board_id: null, board_name: 'Uncategorized' }];
      failure = err.message;
    }
    // A list asked for with the previous (wrong) password can fail after the right password's list came back.
    if (sequence !== this.sequence) return;
    if (failure) showResult(this.saved, false, failure);
    else if (this.saved.classList.contains('error')) this.clearSaved(); // e.g. "rejected" from a wrong password before
    if (!boards.some((b) => b.board_id === null)) boards.unshift({ board_id: null, board_name: 'Uncategorized' });
    this.board.replaceChildren(
      ...boards.map((b) => el('option', { value: b.board_id ?? UNCATEGORIZED, text: b.board_name })),
    );
    const known = boards.some((b) => (b.board_id ?? UNCATEGORIZED) === (this.boardId ?? UNCATEGORIZED));
    this.board.value = known ? this.boardId ?? UNCATEGORIZED : UNCATEGORIZED;
    if (!known && boards.length > 1) {
      showResult(this.saved, false, 'The board chosen before no longer exists in InvokeAI: uploads go to Uncategorized until you pick another.');
    }
  }
}
