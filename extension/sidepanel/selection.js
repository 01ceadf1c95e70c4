// The panel's selection: row ids of the current album, picked in the grid (Ctrl/Cmd-click, Shift-click, Space,
// Shift+arrows, Ctrl+A) or lassoed on the map, and the batch bar that acts on them through the daemon's selection
// routes (star, add to a board, Use as Ref Image, zip, open in the grid). Ids only: the daemon never takes paths.

import { el, showResult } from '../lib/dom.js';

export const MAX_SELECTION = 10000; // the daemon's bound for one selection request and for filters.ids
export const MAX_REF_BATCH = 50; // Use as Ref Image sends one upload per image: more than this is surely a slip

/** "3 selected", "1 selected", or with a cap "10,000 selected (the most one action takes)". Pure, for unit tests. */
export function selectionText(size, capped = false) {
  const count = `${size.toLocaleString('en-US')} selected`;
  return capped ? `${count} (the most one action takes)` : count;
}

/** The indices from `anchor` to `index`, both included, in either direction. Pure, for unit tests. */
export function indexRange(anchor, index) {
  const [low, high] = anchor <= index ? [anchor, index] : [index, anchor];
  return Array.from({ length: high - low + 1 }, (_, i) => low + i);
}

/** A set of row ids with one listener; every change says so once. */
export class Selection {
  /** @param {(selection: Selection) => void} onChange */
  constructor(onChange) {
    this.ids = new Set();
    this.capped = false; // the last change hit MAX_SELECTION and dropped the rest
    this.onChange = onChange;
  }

  get size() {
    return this.ids.size;
  }

  has(id) {
    return this.ids.has(Number(id));
  }

  /** The ids in the order they were picked. */
  list() {
    return [...this.ids];
  }

  replace(ids) {
    this.ids = new Set();
    this.add(ids);
  }

  add(ids) {
    this.capped = false;
    for (const id of ids) {
      if (this.ids.size >= MAX_SELECTION) {
        this.capped = true;
        break;
      }
      this.ids.add(Number(id));
    }
    this.onChange(this);
  }

  toggle(id) {
    if (this.ids.has(Number(id))) this.ids.delete(Number(id));
    else if (this.ids.size < MAX_SELECTION) this.ids.add(Number(id));
    this.capped = false;
    this.onChange(this);
  }

  clear() {
    if (this.ids.size === 0) return;
    this.ids.clear();
    this.capped = false;
    this.onChange(this);
  }
}

/** The bar under the grid and the map while something is selected. */
export class BatchBar {
  /**
   * @param {HTMLElement} root  the bar (#selection-bar)
   * @param {{getDaemon, selection: Selection, getAlbum: () => string|null, onOpenInGrid: (ids) => void,
   *   onChanged: () => void}} opts  onChanged: stars or boards changed on the server, the grid should ask again
   */
  constructor(root, { getDaemon, selection, getAlbum, onOpenInGrid, onChanged }) {
    this.root = root;
    this.getDaemon = getDaemon;
    this.selection = selection;
    this.getAlbum = getAlbum;
    this.onChanged = onChanged;
    this.count = el('span', { id: 'selection-count', class: 'count', role: 'status' });
    this.board = el('select', { id: 'selection-board', 'aria-label': 'Add the selection to an InvokeAI board', title: 'Add to an InvokeAI board' },
      el('option', { value: '', text: 'Add to board…' }));
    this.result = el('p', { id: 'selection-result', class: 'hint', role: 'status' });
    const button = (id, text, title, onclick) => el('button', { id, type: 'button', title, onclick }, text);
    root.append(
      el('div', { class: 'row' },
        this.count,
        button('selection-star', '★ Star', 'Star the selected images (in InvokeAI for a board album)', () => this.star(true)),
        button('selection-unstar', '☆ Unstar', 'Remove the star from the selected images', () => this.star(false)),
        this.board,
        button('selection-ref', 'Use as Ref Image', 'Send each selected image to InvokeAI as a reference image', () => this.useAsRef()),
        button('selection-zip', 'Download zip', 'Download the selected images as one zip file', () => this.zip()),
        button('selection-open', 'Open in grid', 'Show only the selected images in the grid', () => onOpenInGrid(this.selection.list())),
        el('button', { id: 'selection-clear', type: 'button', class: 'icon', title: 'Clear the selection (Esc)', 'aria-label': 'Clear the selection', onclick: () => selection.clear() }, '✕'),
      ),
      this.result,
    );
    this.board.addEventListener('focus', () => this.loadBoards());
    this.board.addEventListener('pointerdown', () => this.loadBoards());
    this.board.addEventListener('change', () => this.addToBoard());
    this.render();
  }

  render() {
    const size = this.selection.size;
    this.root.hidden = size === 0;
    this.count.textContent = selectionText(size, this.selection.capped);
    if (size === 0) this.result.textContent = '';
  }

  path(route) {
    return `/albums/${encodeURIComponent(this.getAlbum())}/selection${route}`;
  }

  /** Run one batch action with its buttons off and say how it went. */
  async run(work) {
    const buttons = [...this.root.querySelectorAll('button, select')];
    for (const b of buttons) b.disabled = true;
    showResult(this.result, true, 'Working…');
    try {
      showResult(this.result, true, await work());
    } catch (err) {
      showResult(this.result, false, err.message);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  star(starred) {
    return this.run(async () => {
      const reply = await this.getDaemon().post(this.path('/star'), { ids: this.selection.list(), starred });
      this.onChanged();
      return reply.message;
    });
  }

  async loadBoards() {
    if (this.boardsLoaded) return;
    this.boardsLoaded = true;
    try {
      const boards = await this.getDaemon().get('/invokeai/boards');
      const named = boards.filter((b) => b.board_id); // Uncategorized is no board to add to
      this.board.replaceChildren(el('option', { value: '', text: 'Add to board…' }),
        ...named.map((b) => el('option', { value: b.board_id, text: b.board_name })));
    } catch (err) {
      this.boardsLoaded = false; // ask again next time (e.g. once Settings has a URL)
      showResult(this.result, false, err.message);
    }
  }

  addToBoard() {
    const boardId = this.board.value;
    if (!boardId) return undefined;
    return this.run(async () => {
      try {
        const reply = await this.getDaemon().post(this.path('/board'), { ids: this.selection.list(), board_id: boardId });
        this.onChanged();
        return reply.message;
      } finally {
        this.board.value = '';
      }
    });
  }

  useAsRef() {
    const ids = this.selection.list();
    if (ids.length > MAX_REF_BATCH) {
      showResult(this.result, false, `Use as Ref Image takes up to ${MAX_REF_BATCH} images at once: ${ids.length.toLocaleString('en-US')} are selected`);
      return undefined;
    }
    return this.run(async () => {
      const album = encodeURIComponent(this.getAlbum());
      let sent = 0;
      for (const id of ids) {
        showResult(this.result, true, `Sending ${sent + 1} of ${ids.length} to InvokeAI…`);
        try {
          await this.getDaemon().post(`/images/${album}/${id}/ref`, {});
          sent += 1;
        } catch (err) {
          throw new Error(sent ? `Sent ${sent} of ${ids.length}, then: ${err.message}` : err.message);
        }
      }
      return `Sent ${sent} image${sent === 1 ? '' : 's'} to InvokeAI as reference images`;
    });
  }

  zip() {
    return this.run(async () => {
      const album = this.getAlbum();
      const blob = await this.getDaemon().postBlob(this.path('/zip'), { ids: this.selection.list() });
      const url = URL.createObjectURL(blob);
      const link = el('a', { href: url, download: `${album}-selection.zip` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000); // the download has started long before
      return `Downloading ${this.selection.size.toLocaleString('en-US')} images as ${album}-selection.zip`;
    });
  }
}
