// Side panel entry: connection state, album picker, view tabs; each view lives in its own module.

import { isBoardAlbum } from '../settings/album-boards.js';
import { AlbumManager } from '../settings/albums.js';
import { InvokeAISettings } from '../settings/invokeai.js';
import { connectDaemon, Daemon } from '../lib/daemon.js';
import { $, copyText, el } from '../lib/dom.js';
import { CONNECTION, LOCAL, SESSION } from '../lib/messages.js';
import { isActive, progressText } from '../lib/progress.js';
import { Drawer, imageName } from './drawer.js';
import { DuplicatesView } from './duplicates.js';
import { AlbumFollower } from './follow.js';
import { ResultGrid } from './grid.js';
import { Lightbox } from './lightbox.js';
import { MapView } from './map.js';
import { countText, SearchForm } from './search.js';
import { BatchBar, Selection } from './selection.js';
import { ThumbCache } from './thumbs.js';

const TOAST_MS = 8000; // long enough to read a sentence; the result also stays in session storage
// The page's own view state (not the worker's): rebuilt from chrome.storage each time the panel opens.
const panel = { daemon: null, album: null, albums: [], view: 'grid', started: false, lost: false, progress: null, notIndexed: false };
const getDaemon = () => {
  if (!panel.daemon) throw new Error('Not connected to the PhotoMap daemon');
  return panel.daemon;
};

const thumbs = new ThumbCache(getDaemon);
// One selection for the grid and the map; the batch bar acts on it. It belongs to the album it was made in.
const selection = new Selection(() => {
  grid.showSelection();
  batchBar.render();
  map.showSelection(selection.list());
});
const grid = new ResultGrid($('#grid'), {
  thumbs,
  selection,
  onOpen: (item) => openImage(item.id),
  onCount: (total, reply) => {
    $('#result-count').textContent = countText(reply);
    $('#show-all').hidden = !(reply.cut && reply.cut.mode === 'auto' && (reply.ranked ?? total) > total);
    // a ranked search's hits light up on the map (its first page: the best matches); a browse lights nothing
    if (reply.offset === 0 || reply.offset === undefined) {
      const ranked = reply.results.some((r) => r.score != null);
      map.highlight(ranked ? reply.results.map((r) => r.id) : []);
    }
    showGridEmpty(total === 0 ? emptyState({ total }) : null);
  },
});
// The InvokeAI backend as the drawer's buttons need it ({url, probe}), asked again after BACKEND_TTL_MS or a change.
const BACKEND_TTL_MS = 30000; // a probe is a round trip to InvokeAI: not on every drawer open
let backendCache = null;
async function getBackend() {
  if (backendCache && Date.now() - backendCache.at < BACKEND_TTL_MS) return backendCache.value;
  const settings = await getDaemon().get('/settings/invokeai');
  const probe = settings.url ? await getDaemon().get('/invokeai/probe').catch(() => null) : null;
  backendCache = { at: Date.now(), value: { url: settings.url || '', probe } };
  return backendCache.value;
}

const drawer = new Drawer({
  getDaemon,
  thumbs,
  getBackend,
  onStep: (delta) => (panel.view === 'duplicates' ? duplicates.step(delta) : grid.step(delta)), // where it was opened
  onStarred: () => grid.refresh().catch((err) => showSearchError(err)),
  onMoreLikeThis: (current) => {
    drawer.close();
    showView('grid');
    const name = imageName(current.record, `image ${current.id}`);
    search.setImageQuery({ id: current.id, label: `Like ${name}`, thumbUrl: $('#drawer-image').src });
  },
});
new Lightbox(drawer, (delta) => grid.step(delta));
const search = new SearchForm((body) => runSearch(body));
const map = new MapView($('#map'), {
  getDaemon,
  thumbs,
  onOpen: (id) => openImage(id),
  onLasso: (ids, { add = false } = {}) => (add ? selection.add(ids) : selection.replace(ids)),
  onCluster: ({ cluster, label }) => {
    showView('grid');
    search.setScope({ cluster, label });
  },
});
const batchBar = new BatchBar($('#selection-bar'), {
  getDaemon,
  selection,
  getAlbum: () => panel.album,
  onOpenInGrid: (ids) => {
    showView('grid');
    search.setScope({ ids });
  },
  onChanged: () => grid.refresh().catch((err) => showSearchError(err)),
});
const albums = new AlbumManager($('#view-albums'), getDaemon, () => loadAlbums(), { openSettings: () => showView('settings') });
const follower = new AlbumFollower(getDaemon, {
  onProgress: (event) => showAlbumProgress(event),
  onRefresh: ({ map: redrawMap }) => {
    grid.refresh().catch((err) => showSearchError(err));
    if (redrawMap) loadFacets(panel.album);
    if (redrawMap && panel.view === 'map' && panel.album) map.show(panel.album, search.filters());
  },
});
const invokeai = new InvokeAISettings($('#view-settings'), getDaemon);
const duplicates = new DuplicatesView($('#view-duplicates'), { getDaemon, thumbs, onOpen: (id) => openImage(id), onBack: () => showView('grid') });

function openImage(id) {
  if (!panel.album) return;
  drawer.open(panel.album, id).catch((err) => showError(err.message));
}

function showError(message) {
  $('#result-count').textContent = message;
}

const albumName = () => panel.albums.find((a) => a.key === panel.album)?.display_name || panel.album;

/**
 * What the empty grid says and offers, from the panel's state: no album, not indexed (running or not), an empty
 * album, or a search that matched nothing. {text, action?: {label, run}} or null when there is nothing to say.
 */
function emptyState({ total, notIndexed = false }) {
  if (!panel.album) {
    return { text: 'No albums yet. Add a folder of images or your InvokeAI boards to start searching them.', action: { label: 'Add an album', run: addAlbum } };
  }
  const name = albumName();
  if (isActive(panel.progress)) return { text: `Indexing "${name}"… images appear here as they are indexed.` };
  if (notIndexed) {
    return { text: `"${name}" has not been indexed yet.`, action: { label: 'Update Index', run: () => albums.index(panel.album, 'update') } };
  }
  if (total !== 0) return null;
  if (search.isFiltered()) return { text: 'No images match this search.', action: { label: 'Clear search', run: () => search.clear() } };
  if (isBoardAlbum(panel.albums.find((a) => a.key === panel.album))) return { text: `No images in the InvokeAI boards of "${name}" yet. New images there come in by themselves, or edit the album's boards.`, action: { label: 'Open Albums', run: () => showView('albums') } };
  return { text: `No images found in the folders of "${name}". Add images there, or edit the album's folders.`, action: { label: 'Open Albums', run: () => showView('albums') } };
}

function showGridEmpty(state) {
  const box = $('#grid-empty');
  box.hidden = !state;
  if (!state) return;
  $('#grid-empty-text').textContent = state.text;
  const button = $('#grid-empty-action');
  button.hidden = !state.action;
  button.textContent = state.action ? state.action.label : '';
  button.onclick = state.action ? () => state.action.run() : null;
}

function addAlbum() {
  showView('albums');
  albums.showForm(null);
}

function showSearchError(err) {
  if (err && (err.status === 400 || err.status === 422)) {
    search.showError({ message: err.message }); // the query itself is wrong: say so next to the form
  } else if (err && err.code === 'not_indexed') {
    $('#result-count').textContent = '';
    showGridEmpty(emptyState({ notIndexed: true }));
  } else {
    showError(err.message);
  }
}

/** The album's run, above the grid: phase in words while it runs, nothing once it is over. */
function showAlbumProgress(event) {
  panel.progress = event;
  const line = $('#album-progress');
  line.hidden = !isActive(event);
  line.textContent = isActive(event) ? `Indexing: ${progressText(event)}` : '';
  if (!$('#grid-empty').hidden) showGridEmpty(emptyState({ total: grid.total, notIndexed: panel.notIndexed }));
}

async function runSearch(body) {
  if (!panel.daemon || !panel.album) return;
  $('#show-all').hidden = true;
  const album = panel.album;
  const path = `/albums/${encodeURIComponent(album)}/search`;
  panel.notIndexed = false;
  try {
    await grid.reset(album, (offset, limit) =>
      getDaemon()
        .post(path, { ...body, offset, limit })
        .then((reply) => ((panel.notIndexed = false), reply)),
    );
  } catch (err) {
    panel.notIndexed = err && err.code === 'not_indexed';
    if (album === panel.album) showSearchError(err);
  }
}

/** The album's own models, LoRAs and generators for the filter pick-lists (best effort: typing still works). */
async function loadFacets(album) {
  if (!album) return;
  try {
    const facets = await getDaemon().get(`/albums/${encodeURIComponent(album)}/facets`);
    if (album === panel.album) search.setFacets(facets);
  } catch {
    // an older daemon without facets: the fields still take any text
  }
}

async function loadAlbums() {
  let list;
  try {
    list = await getDaemon().get('/albums');
  } catch (err) {
    showError(err.message);
    return;
  }
  panel.albums = list;
  const picker = $('#album-picker');
  const { [LOCAL.ALBUM]: saved } = await chrome.storage.local.get(LOCAL.ALBUM);
  picker.replaceChildren(...list.map((a) => el('option', { value: a.key, text: a.display_name })));
  if (list.length === 0) {
    picker.append(el('option', { value: '', text: 'No albums yet' }));
    await chooseAlbum(null);
    return;
  }
  const chosen = list.some((a) => a.key === saved) ? saved : list[0].key;
  picker.value = chosen;
  if (chosen !== panel.album) await chooseAlbum(chosen);
}

/** Switch every view to album `key` (null: none left), and follow its indexing. */
async function chooseAlbum(key) {
  panel.album = key;
  panel.progress = panel.albums.find((a) => a.key === key)?.progress || null;
  drawer.close();
  selection.clear(); // ids belong to one album
  search.scope = null; // a cluster or a selection of the album before means nothing here
  if (panel.view === 'duplicates' && key) duplicates.show(key).catch((err) => showError(err.message));
  else if (panel.view === 'duplicates') duplicates.clear();
  showAlbumProgress(panel.progress);
  follower.follow(key);
  if (key) await chrome.storage.local.set({ [LOCAL.ALBUM]: key });
  if (!key) {
    grid.clear();
    $('#result-count').textContent = '';
    showGridEmpty(emptyState({}));
    map.clear('No albums yet: add one in Albums to see its map.');
    return;
  }
  showGridEmpty(null);
  loadFacets(key);
  search.submit();
  if (panel.view === 'map') map.show(key, search.filters());
}

function showView(view) {
  panel.view = view;
  document.body.dataset.view = view; // the selection bar shows under the grid and the map only
  // Over the map the bar floats on the canvas: taking height from the map would resize it and move every point.
  const bar = $('#selection-bar');
  if (view === 'map') $('#map').append(bar);
  else if (bar.parentElement !== document.body) document.body.insertBefore(bar, $('#toast'));
  for (const tab of document.querySelectorAll('.tabs button')) {
    tab.setAttribute('aria-selected', String(tab.dataset.view === (view === 'duplicates' ? 'grid' : view))); // opened from the grid
  }
  for (const name of ['grid', 'map', 'albums', 'settings', 'duplicates']) $(`#view-${name}`).hidden = name !== view;
  chrome.storage.local.set({ [LOCAL.VIEW]: view });
  if (!panel.daemon) return;
  if (view === 'map' && panel.album) map.show(panel.album, search.filters());
  else if (view === 'map') map.clear('No albums yet: add one in Albums to see its map.');
  if (view === 'albums') albums.load().catch((err) => showError(err.message));
  if (view === 'settings') invokeai.load().catch((err) => showError(err.message));
  if (view === 'duplicates' && panel.album) duplicates.show(panel.album).catch((err) => showError(err.message));
}

function renderConnection(record) {
  const connected = record.state === CONNECTION.CONNECTED;
  const failed = record.state === CONNECTION.NOT_INSTALLED || record.state === CONNECTION.NOT_RUNNING;
  const dot = $('#connection-dot');
  dot.className = `dot ${connected ? 'connected' : failed ? 'failed' : ''}`;
  dot.title = connected ? `Connected to photomapd ${record.version || ''}`.trim() : record.message || 'Connecting…';
  document.body.dataset.connection = record.state;
  $('#connection-banner').hidden = !failed;
  if (failed) {
    $('#connection-message').textContent = record.message;
    $('#connection-command').textContent = record.command;
  }
}

async function onConnection(record) {
  renderConnection(record);
  const connected = record.state === CONNECTION.CONNECTED;
  panel.daemon = connected ? new Daemon(record, { onLost: reconnect }) : null;
  if (connected && !panel.started) {
    panel.started = true;
    invokeai.syncUrl().catch(() => {}); // best effort: only decides where the panel opens by itself
    await loadAlbums();
    showView(panel.view);
  } else if (connected && panel.lost) {
    panel.lost = false;
    await loadAlbums();
    search.submit(); // redo what failed while the daemon was away
  }
}

/** A request found the daemon gone or our token refused: ask the worker for a fresh hello, once at a time. */
function reconnect() {
  if (panel.lost) return;
  panel.lost = true;
  connect(true);
}

async function connect(refresh) {
  renderConnection({ state: CONNECTION.CONNECTING });
  try {
    const { connection } = await connectDaemon({ refresh });
    await onConnection(connection);
  } catch (err) {
    renderConnection({ state: CONNECTION.NOT_RUNNING, message: err.message, command: 'photomapd serve' });
  }
}

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'session' && changes[SESSION.CONNECTION]?.newValue) onConnection(changes[SESSION.CONNECTION].newValue);
  if (area === 'local' && changes[LOCAL.INVOKEAI_URL]) backendCache = null; // Settings saved a URL: probe again
  if (area === 'session' && changes[SESSION.LAST_REF_IMAGE]?.newValue) showRefImageResult(changes[SESSION.LAST_REF_IMAGE].newValue);
});

/** The context menu's "Use as Ref Image" outcome, in the panel too (not only as an OS notification). */
function showRefImageResult(result) {
  const toast = $('#toast');
  toast.textContent = result.message;
  toast.className = `toast ${result.ok ? 'ok' : 'error'}`;
  toast.hidden = false;
  clearTimeout(showRefImageResult.timer);
  showRefImageResult.timer = setTimeout(() => (toast.hidden = true), TOAST_MS);
}
for (const tab of document.querySelectorAll('.tabs button')) tab.addEventListener('click', () => showView(tab.dataset.view));
$('#album-picker').addEventListener('change', (event) => chooseAlbum(event.target.value));
$('#connection-retry').addEventListener('click', () => connect(true));
$('#find-duplicates').addEventListener('click', () => showView('duplicates'));
$('#copy-command').addEventListener('click', () => copyText($('#connection-command').textContent));

chrome.storage.local.get(LOCAL.VIEW).then(({ [LOCAL.VIEW]: view }) => {
  if (view) showView(view);
  connect(false);
});
