// Side panel entry: connection state, album picker, view tabs; each view lives in its own module.

import { AlbumManager } from '../settings/albums.js';
import { InvokeAISettings } from '../settings/invokeai.js';
import { connectDaemon, Daemon } from '../lib/daemon.js';
import { $, copyText, el } from '../lib/dom.js';
import { CONNECTION, LOCAL, SESSION } from '../lib/messages.js';
import { Drawer } from './drawer.js';
import { ResultGrid } from './grid.js';
import { MapView } from './map.js';
import { SearchForm } from './search.js';
import { ThumbCache } from './thumbs.js';

// The page's own view state (not the worker's): rebuilt from chrome.storage each time the panel opens.
const panel = { daemon: null, album: null, view: 'grid', started: false, lost: false };
const getDaemon = () => {
  if (!panel.daemon) throw new Error('Not connected to the PhotoMap daemon');
  return panel.daemon;
};

const thumbs = new ThumbCache(getDaemon);
const grid = new ResultGrid($('#grid'), {
  thumbs,
  onOpen: (item) => openImage(item.id),
  onCount: (total) => {
    $('#result-count').textContent = `${total.toLocaleString()} image${total === 1 ? '' : 's'}`;
  },
});
const drawer = new Drawer({
  getDaemon,
  thumbs,
  onStep: (delta) => grid.step(delta),
  onMoreLikeThis: (current) => {
    drawer.close();
    showView('grid');
    search.setImageQuery({ id: current.id, label: `Like image ${current.id}`, thumbUrl: $('#drawer-image').src });
  },
});
const search = new SearchForm((body) => runSearch(body));
const map = new MapView($('#map'), { getDaemon, thumbs, onOpen: (id) => openImage(id) });
const albums = new AlbumManager($('#view-albums'), getDaemon, () => loadAlbums());
const invokeai = new InvokeAISettings($('#view-settings'), getDaemon);

function openImage(id) {
  drawer.open(panel.album, id).catch((err) => showError(err.message));
}

function showError(message) {
  $('#result-count').textContent = message;
}

async function runSearch(body) {
  if (!panel.daemon || !panel.album) return;
  const album = panel.album;
  const path = `/albums/${encodeURIComponent(album)}/search`;
  try {
    await grid.reset(album, (offset, limit) => getDaemon().post(path, { ...body, offset, limit }));
  } catch (err) {
    showError(err.message);
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
  const picker = $('#album-picker');
  const { [LOCAL.ALBUM]: saved } = await chrome.storage.local.get(LOCAL.ALBUM);
  picker.replaceChildren(...list.map((a) => el('option', { value: a.key, text: a.display_name })));
  if (list.length === 0) {
    picker.append(el('option', { value: '', text: 'No albums yet' }));
    panel.album = null;
    showError('Add an album in the Albums tab to get started.');
    return;
  }
  const chosen = list.some((a) => a.key === saved) ? saved : list[0].key;
  picker.value = chosen;
  if (chosen !== panel.album) await chooseAlbum(chosen);
}

async function chooseAlbum(key) {
  panel.album = key;
  await chrome.storage.local.set({ [LOCAL.ALBUM]: key });
  search.submit();
  if (panel.view === 'map') map.show(key, search.filters());
}

function showView(view) {
  panel.view = view;
  for (const tab of document.querySelectorAll('.tabs button')) {
    tab.setAttribute('aria-selected', String(tab.dataset.view === view));
  }
  for (const name of ['grid', 'map', 'albums', 'settings']) $(`#view-${name}`).hidden = name !== view;
  chrome.storage.local.set({ [LOCAL.VIEW]: view });
  if (!panel.daemon) return;
  if (view === 'map' && panel.album) map.show(panel.album, search.filters());
  if (view === 'albums') albums.load().catch((err) => showError(err.message));
  if (view === 'settings') invokeai.load().catch((err) => showError(err.message));
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
});
for (const tab of document.querySelectorAll('.tabs button')) tab.addEventListener('click', () => showView(tab.dataset.view));
$('#album-picker').addEventListener('change', (event) => chooseAlbum(event.target.value));
$('#connection-retry').addEventListener('click', () => connect(true));
$('#copy-command').addEventListener('click', () => copyText($('#connection-command').textContent));

chrome.storage.local.get(LOCAL.VIEW).then(({ [LOCAL.VIEW]: view }) => {
  if (view) showView(view);
  connect(false);
});
