// Browser scenarios, one per test in test_browser.py. Each drives the real side panel page and returns what it saw;
// pytest holds the expectations (fixture metadata, the fake InvokeAI's log), so a scenario only observes.

import {
  WAIT_MS,
  INDEX_WAIT_MS,
  connected,
  settledConnection,
  openView,
  thumbnailsShown,
  openDrawer,
  drawerFields,
  probeHint,
  pointOnScreen,
  sidewaysOverflow,
} from './scenario-steps.mjs';
import { BOARD_SCENARIOS } from './scenarios-boards.mjs';
import { DUPLICATE_SCENARIOS } from './scenarios-duplicates.mjs';
import { MAP_SCENARIOS } from './scenarios-map.mjs';
import { SELECTION_SCENARIOS } from './scenarios-selection.mjs';

export const SCENARIOS = {
  /** The panel asks the worker, the worker asks the native host, the daemon answers; then the worker is stopped
   * and a fresh one must serve the panel from session storage; then a refused token makes the panel reconnect. */
  async connect({ page, stopWorker }) {
    await connected(page);
    // "connected" is set before the album list arrives: wait for the picker to be filled, not just for the state.
    await page.waitForSelector('#album-picker option', { state: 'attached', timeout: WAIT_MS });
    const albums = await page.$$eval('#album-picker option', (opts) => opts.map((o) => o.value));
    const session = { connection: await settledConnection(page) };
    // Chromium: stop the worker; a fresh one must answer from session storage. (Firefox's event page can't be
    // stopped from a test; its driver has no stopWorker.)
    const stoppedWorker = Boolean(stopWorker);
    if (stopWorker) await stopWorker();
    const afterRestart = await page.evaluate(() => chrome.runtime.sendMessage({ type: 'photomap/connect' }));
    // a daemon restarted with a new token: the panel's next request is refused, and it must hello again by itself
    await page.evaluate(async () => {
      const { connection } = await chrome.storage.session.get('connection');
      await chrome.storage.session.set({ connection: { ...connection, token: 'stale-token' } });
    });
    await page.fill('#search-text', 'after a restart');
    await page.press('#search-text', 'Enter');
    // While it reconnects the record is {state: 'connecting'} with no token: wait for a finished handshake.
    await page.waitForFunction(async () => {
      const { connection } = await chrome.storage.session.get('connection');
      return connection.state === 'connected' && connection.token !== 'stale-token';
    }, null, { timeout: WAIT_MS });
    await thumbnailsShown(page, 1);
    // Thumbnail requests sent with the stale token before the recovery may trigger one more (harmless) handshake:
    // read the record once it is settled again.
    const recovered = { connection: await settledConnection(page) };
    return {
      recoveredToken: recovered.connection.token === session.connection.token,
      state: session.connection.state,
      port: session.connection.port,
      hasToken: Boolean(session.connection.token),
      albums,
      afterRestart: afterRestart.state,
      stoppedWorker,
      dot: await page.getAttribute('#connection-dot', 'class'),
    };
  },

  /** A text search fills the grid with thumbnails fetched with the bearer header (no token in any URL). */
  async search({ page, params }) {
    await connected(page);
    await page.fill('#search-text', params.text);
    await page.press('#search-text', 'Enter');
    // a text query keeps the close matches; "Show all" lifts the cut
    await page.waitForFunction(() => document.querySelector('#grid .cell .score'), null, { timeout: WAIT_MS });
    const cutCount = await page.textContent('#result-count');
    if (await page.$eval('#show-all', (b) => !b.hidden)) await page.click('#show-all');
    const ids = await thumbnailsShown(page, params.minResults);
    const urls = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
    const srcs = await page.$$eval('#grid .cell img', (imgs) => imgs.map((img) => img.src));
    // keyboard: focus the grid (the first arrow selects the first image), move right, open with Enter
    await page.focus('#grid');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#drawer:not([hidden]) #drawer-fields');
    const selected = await page.$eval('#grid .cell.selected', (c) => Number(c.dataset.id));
    return { ids, urls, srcs, cutCount, count: await page.textContent('#result-count'), selected };
  },

  /** Without the native host the panel says so, with the one command that fixes it. */
  async notInstalled({ page }) {
    await page.waitForSelector('#connection-banner:not([hidden])', { timeout: WAIT_MS });
    return {
      state: await page.getAttribute('body', 'data-connection'),
      message: await page.textContent('#connection-message'),
      command: await page.textContent('#connection-command'),
    };
  },

  /** A daemon that can't start: the banner gives the host's cause and exact command within seconds. */
  async failedStart({ page }) {
    const started = Date.now();
    await page.waitForSelector('#connection-banner:not([hidden])', { timeout: 60000 });
    return {
      elapsedMs: Date.now() - started,
      state: await page.getAttribute('body', 'data-connection'),
      message: await page.textContent('#connection-message'),
      command: await page.textContent('#connection-command'),
    };
  },

  /** A tab on the configured InvokeAI URL gets the panel enabled; the toolbar button opens it beside any tab. */
  async invokeaiTab({ context, worker, params }) {
    await worker.evaluate((url) => chrome.storage.local.set({ invokeaiUrl: url }), params.invokeaiUrl);
    const tab = await context.newPage();
    await tab.goto(params.invokeaiUrl);
    const tabId = await worker.evaluate(async (url) => (await chrome.tabs.query({})).find((t) => t.url.startsWith(url)).id, params.invokeaiUrl);
    const options = await worker.evaluate(async (id) => {
      for (let i = 0; i < 100; i += 1) {
        const opts = await chrome.sidePanel.getOptions({ tabId: id });
        if (opts.path) return opts;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return chrome.sidePanel.getOptions({ tabId: id });
    }, tabId);
    const behavior = await worker.evaluate(() => chrome.sidePanel.getPanelBehavior());
    return { options, behavior };
  },

  /** "More like this" in the drawer searches by that image; it comes back first (cosine 1 with itself). */
  async moreLikeThis({ page, params }) {
    await openDrawer(page, params.id);
    await page.click('#drawer-more');
    await page.waitForSelector('#drawer', { state: 'hidden' });
    await page.waitForFunction((id) => document.querySelector('#grid .cell[data-index="0"]')?.dataset.id === String(id), params.id, { timeout: WAIT_MS });
    return { label: await page.textContent('#image-query-label'), first: await page.getAttribute('#grid .cell[data-index="0"]', 'data-id') };
  },

  /** Dropping an image file on the panel searches by its pixels. */
  async dropImage({ page, params }) {
    await connected(page);
    await thumbnailsShown(page, 1);
    await page.evaluate(async ({ b64, name }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type: 'image/png' }));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, params);
    await page.waitForSelector('#image-query:not([hidden])');
    await page.waitForFunction((id) => document.querySelector('#grid .cell[data-index="0"]')?.dataset.id === String(id), params.expectFirst, { timeout: WAIT_MS });
    return { label: await page.textContent('#image-query-label') };
  },

  /** 100k results: the grid keeps a screenful of cells in the DOM and fetches only the pages it shows. The search
   * and thumbnail answers are synthesized here (Playwright routes) so the album need not hold 100k images. */
  async bigGrid({ page, params }) {
    const offsets = [];
    let thumbs = 0;
    const png = Buffer.from(params.thumbB64, 'base64');
    await page.route(/\/api\/v1\/albums\/[^/]+\/search$/, async (route) => {
      const { offset, limit } = route.request().postDataJSON();
      offsets.push(offset);
      const count = Math.max(0, Math.min(limit, params.total - offset));
      const results = Array.from({ length: count }, (_, i) => ({ id: offset + i, score: 0.5, width: 64, height: 64 }));
      await route.fulfill({ json: { results, total: params.total, offset, limit } });
    });
    await page.route(/\/thumb$/, async (route) => {
      thumbs += 1;
      await route.fulfill({ body: png, contentType: 'image/png' });
    });
    await connected(page);
    await page.fill('#search-text', 'anything');
    await page.press('#search-text', 'Enter');
    await page.waitForFunction((n) => document.querySelector('#result-count').textContent.startsWith(n), params.total.toLocaleString('en-US'), { timeout: WAIT_MS });
    await thumbnailsShown(page, 8);
    const middle = await page.$eval('#grid', (grid) => {
      grid.scrollTop = grid.scrollHeight / 2;
      return grid.scrollHeight;
    });
    await page.waitForFunction(
      (total) => [...document.querySelectorAll('#grid .cell')].some((c) => Math.abs(Number(c.dataset.index) - total / 2) < 200 && c.querySelector('img').src.startsWith('blob:')),
      params.total,
      { timeout: WAIT_MS },
    );
    const cellsMidway = await page.$$eval('#grid .cell', (all) => all.length);
    await page.focus('#grid');
    await page.keyboard.press('End'); // keyboard: jump to the last result
    await page.waitForFunction((last) => document.querySelector(`#grid .cell.selected[data-index="${last}"] img`)?.src.startsWith('blob:'), params.total - 1, { timeout: WAIT_MS });
    const cells = await page.$$eval('#grid .cell', (all) => all.map((c) => Number(c.dataset.index)));
    return { cells: Math.max(cells.length, cellsMidway), maxIndex: Math.max(...cells), scrollHeight: middle, offsets, thumbs };
  },

  /** Clicking a thumbnail opens the drawer with the image's fields. */
  async drawer({ page, params }) {
    await openDrawer(page, params.id);
    const titles = await page.$$eval('#drawer-fields dt span', (spans) => spans.map((s) => s.textContent));
    const copyButtons = await page.$$eval('#drawer-fields button.copy', (bs) => bs.map((b) => b.dataset.field));
    return { fields: await drawerFields(page), titles, copyButtons };
  },

  /** The copy icon puts the field's value on the clipboard (read back from a web page allowed to read it:
   * permissions cannot be granted to extension origins). */
  async copy({ page, context, params }) {
    await openDrawer(page, params.id);
    await page.click(`#drawer-fields button.copy[data-field="${params.field}"]`);
    await page.waitForFunction(() => document.querySelector('#action-result').textContent.startsWith('Copied'));
    const shown = (await drawerFields(page))[params.field];
    const reader = await context.newPage();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(params.readerUrl).origin });
    await reader.goto(params.readerUrl);
    await reader.bringToFront();
    const clipboard = await reader.evaluate(() => navigator.clipboard.readText());
    return { clipboard, shown, copied: await page.textContent('#action-result') };
  },

  /** The preview opens the full file in a lightbox; → walks the results (drawer follows), Esc closes it only. */
  async lightbox({ page, params }) {
    await openDrawer(page, params.id);
    await page.waitForSelector('#drawer-image[data-full]', { state: 'attached', timeout: WAIT_MS });
    const previewNatural = await page.$eval('#drawer-image', (img) => [img.naturalWidth, img.naturalHeight]);
    await page.click('#drawer-image');
    await page.waitForSelector('#lightbox:not([hidden])', { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('#lightbox-image').naturalWidth > 0, null, { timeout: WAIT_MS });
    const natural = await page.$eval('#lightbox-image', (img) => [img.naturalWidth, img.naturalHeight]);
    const caption = await page.textContent('#lightbox-caption');
    await page.screenshot({ path: params.shot });
    const before = await page.$eval('#lightbox-image', (img) => img.src);
    // → to the next result, or ← when this one is the last
    const isLast = await page.$eval('#grid .cell.selected', (cell) => !document.querySelector(`#grid .cell[data-index="${Number(cell.dataset.index) + 1}"]`));
    await page.keyboard.press(isLast ? 'ArrowLeft' : 'ArrowRight');
    await page.waitForFunction((src) => document.querySelector('#lightbox-image').src !== src && document.querySelector('#lightbox-image').naturalWidth > 0, before, { timeout: WAIT_MS });
    const nextName = (await page.textContent('#lightbox-caption')).split(' ')[0];
    const drawerName = await page.textContent('#drawer-fields dd[data-field="file_name"]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#lightbox', { state: 'hidden', timeout: WAIT_MS });
    const afterEsc = { lightbox: await page.$eval('#lightbox', (n) => n.hidden), drawer: await page.$eval('#drawer', (n) => n.hidden) };
    return { previewNatural, natural, caption, nextName, drawerName, afterEsc };
  },

  /** "View full metadata" shows the raw metadata, every chunk. */
  async fullMetadata({ page, params }) {
    await openDrawer(page, params.id);
    const hiddenBefore = await page.$eval('#drawer-full', (pre) => pre.hidden);
    await page.click('#drawer-full-toggle');
    await page.waitForSelector('#drawer-full:not([hidden])');
    return { hiddenBefore, text: await page.textContent('#drawer-full') };
  },

  /** Recall then Remix; each shows its outcome inline. pytest reads what the fake InvokeAI received. */
  async recallRemix({ page, params }) {
    await openDrawer(page, params.id);
    const outcomes = {};
    for (const action of ['recall', 'remix']) {
      await page.click(`#action-${action}`);
      await page.waitForFunction(() => /ok|error/.test(document.querySelector('#action-result').className), null, { timeout: WAIT_MS });
      outcomes[action] = await page.$eval('#action-result', (p) => ({ text: p.textContent, ok: p.classList.contains('ok') }));
      await page.evaluate(() => {
        document.querySelector('#action-result').className = 'action-result';
      });
    }
    return outcomes;
  },

  /** An image without recognised InvokeAI metadata: Remix/Recall greyed with a tooltip, Use as Ref Image live. */
  async greyed({ page, params }) {
    await openDrawer(page, params.id);
    const state = (sel) => page.$eval(sel, (b) => ({ disabled: b.disabled, title: b.title }));
    const result = { recall: await state('#action-recall'), remix: await state('#action-remix'), ref: await state('#action-ref') };
    await page.click('#action-ref');
    await page.waitForFunction(() => /ok|error/.test(document.querySelector('#action-result').className), null, { timeout: WAIT_MS });
    result.refOutcome = await page.$eval('#action-result', (p) => ({ text: p.textContent, ok: p.classList.contains('ok') }));
    return result;
  },

  /** The four probe failures appear under the URL field, red, with the warning icon. */
  async urlMessages({ page, params }) {
    await connected(page);
    await openView(page, 'settings');
    await page.waitForSelector('#invokeai-url');
    const hints = [];
    for (const url of params.urls) hints.push({ url, ...(await probeHint(page, url)) });
    return { hints };
  },

  /** A good probe reveals Username, Password and the board dropdown; the password is never pre-filled. */
  async rowsAfterProbe({ page, params }) {
    await connected(page);
    await openView(page, 'settings');
    await page.waitForSelector('#invokeai-url');
    const before = await page.$eval('#invokeai-auth-rows', (rows) => rows.hidden);
    const hint = await probeHint(page, params.url);
    await page.waitForFunction(() => document.querySelectorAll('#invokeai-board option').length > 1, null, { timeout: WAIT_MS });
    return {
      before,
      hint,
      boards: await page.$$eval('#invokeai-board option', (opts) => opts.map((o) => ({ value: o.value, text: o.textContent }))),
      password: await page.$eval('#invokeai-password', (input) => ({ value: input.value, placeholder: input.placeholder })),
    };
  },

  /** Stale errors clear, single-user says "leave blank", an old server greys Recall/Remix with the reason. */
  async settingsStates({ page, params }) {
    await connected(page);
    await openView(page, 'settings');
    await page.waitForSelector('#invokeai-url');
    const seen = { multi: await probeHint(page, params.multiUrl) };
    seen.multi.account = await page.textContent('#invokeai-account-hint');
    seen.multi.actions = await page.$$eval('#invokeai-actions-hint li', (lis) => lis.map((li) => li.textContent));
    await page.fill('#invokeai-username', params.user);
    await page.$eval('#invokeai-username', (i) => i.dispatchEvent(new Event('change')));
    await page.fill('#invokeai-password', params.wrongPassword);
    await page.$eval('#invokeai-password', (i) => i.dispatchEvent(new Event('change')));
    seen.beforeLogin = await page.textContent('#invokeai-saved');
    await page.waitForFunction(() => /rejected/.test(document.querySelector('#invokeai-saved').textContent), null, { timeout: WAIT_MS });
    seen.rejected = await page.textContent('#invokeai-saved');
    await page.fill('#invokeai-password', params.rightPassword);
    await page.$eval('#invokeai-password', (i) => i.dispatchEvent(new Event('change')));
    await page.waitForFunction((board) => [...document.querySelectorAll('#invokeai-board option')].some((o) => o.textContent === board), params.board, { timeout: WAIT_MS });
    // The board list and the save's answer arrive separately: wait (bounded) for the stale error to go, then record.
    await page.waitForFunction(() => {
      const saved = document.querySelector('#invokeai-saved');
      return !saved.classList.contains('error') && !/rejected/.test(saved.textContent);
    }, null, { timeout: WAIT_MS }).catch(() => {});
    seen.afterRight = { text: await page.textContent('#invokeai-saved'), isError: await page.$eval('#invokeai-saved', (p) => p.classList.contains('error')) };
    await page.screenshot({ path: `${params.shotPrefix}-old-multiuser.png` });
    await openView(page, 'grid');
    await openDrawer(page, params.id);
    const state = (sel) => page.$eval(sel, (b) => ({ disabled: b.disabled, title: b.title }));
    seen.drawer = { recall: await state('#action-recall'), remix: await state('#action-remix'), ref: await state('#action-ref') };
    await page.keyboard.press('Escape');
    await openView(page, 'settings');
    seen.single = await probeHint(page, params.singleUrl);
    seen.single.account = await page.textContent('#invokeai-account-hint');
    seen.single.actions = await page.$$eval('#invokeai-actions-hint li', (lis) => lis.map((li) => li.textContent));
    await page.screenshot({ path: `${params.shotPrefix}-single-user.png` });
    await page.fill('#invokeai-url', '');
    await page.waitForFunction(() => document.querySelector('#invokeai-url-hint').textContent !== 'Checking…', null, { timeout: WAIT_MS });
    await openView(page, 'grid');
    await openDrawer(page, params.id);
    seen.unconfigured = { ref: await state('#action-ref'), hint: await page.textContent('#action-hint') };
    await page.screenshot({ path: `${params.shotPrefix}-no-backend-drawer.png` });
    return seen;
  },

  /** Choosing a board (and the attach option) sticks: a reopened panel shows the same choices. */
  async boardPersists({ page, params, panelUrl }) {
    await connected(page);
    await openView(page, 'settings');
    await page.waitForFunction((name) => [...document.querySelectorAll('#invokeai-board option')].some((o) => o.textContent === name), params.board, { timeout: WAIT_MS });
    await page.selectOption('#invokeai-board', { label: params.board });
    await page.waitForFunction(() => document.querySelector('#invokeai-saved').textContent.startsWith('Uploads go to'));
    const saved = page.waitForResponse((r) => r.url().endsWith('/settings/invokeai') && r.request().method() === 'PUT');
    await page.check('#invokeai-attach');
    await saved;
    await page.goto(panelUrl);
    await connected(page);
    await page.waitForSelector('#view-settings:not([hidden])'); // the panel reopens on the last view
    await page.waitForFunction(() => document.querySelectorAll('#invokeai-board option').length > 1, null, { timeout: WAIT_MS });
    return {
      chosen: await page.$eval('#invokeai-board', (s) => s.selectedOptions[0].textContent),
      attach: await page.isChecked('#invokeai-attach'),
    };
  },

  /** Add an album in the manager, press Update Index, watch the SSE progress reach 100 %, then delete it. */
  async albumProgress({ page, params }) {
    await connected(page);
    await openView(page, 'albums');
    await page.click('#album-add');
    await page.fill('#album-form input[name="key"]', params.key);
    await page.fill('#album-form input[name="display_name"]', params.name);
    await page.fill('#album-form textarea[name="folders"]', params.folder);
    await page.click('#album-form button[type="submit"]');
    const card = `.album[data-key="${params.key}"]`;
    await page.waitForSelector(card, { timeout: WAIT_MS });
    await page.waitForFunction((sel) => document.querySelector(`${sel} .progress-text`).dataset.state === 'done', card, { timeout: INDEX_WAIT_MS });
    await page.click(`${card} button[data-act="update"]`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .progress-text`).dataset.percent === '100' && document.querySelector(`${sel} .progress-text`).dataset.state === 'done', card, { timeout: INDEX_WAIT_MS });
    await page.waitForSelector(`#album-picker option[value="${params.key}"]`, { state: 'attached', timeout: WAIT_MS });
    const seen = {
      progress: await page.textContent(`${card} .progress-text`),
      bar: await page.$eval(`${card} progress`, (p) => p.value),
      skipped: await page.$$eval(`${card} .skipped li`, (lis) => lis.map((li) => li.textContent)),
      albums: await page.$$eval('#album-picker option', (opts) => opts.map((o) => o.value)),
    };
    await page.waitForFunction((sel) => /^\d+ images indexed$/.test(document.querySelector(`${sel} .count`).textContent) && !document.querySelector(`${sel} .count`).textContent.startsWith('0'), card, { timeout: WAIT_MS });
    seen.count = await page.textContent(`${card} .count`);
    await page.click(`${card} button[data-act="edit"]`);
    await page.fill('#album-form input[name="display_name"]', `${params.name} (renamed)`);
    await page.click('#album-form button[type="submit"]');
    await page.waitForFunction(([sel, name]) => document.querySelector(`${sel} h3`)?.textContent.startsWith(name), [card, `${params.name} (renamed)`], { timeout: WAIT_MS });
    seen.renamed = await page.textContent(`${card} h3`);
    await page.click(`${card} button[data-act="delete"]`);
    seen.confirmText = await page.textContent(`${card} .buttons span`);
    await page.click(`${card} button[data-act="confirm-delete"]`);
    await page.waitForSelector(card, { state: 'detached', timeout: WAIT_MS });
    await page.waitForSelector(`#album-picker option[value="${params.key}"]`, { state: 'detached', timeout: WAIT_MS });
    seen.albumsAfterDelete = await page.$$eval('#album-picker option', (opts) => opts.map((o) => o.value));
    return seen;
  },

  /** The map draws the album's points with WebGL (SwiftShader here); pytest checks the screenshot's pixels. */
  async map({ page, params }) {
    await connected(page);
    await openView(page, 'map');
    await page.waitForSelector('#map canvas', { timeout: WAIT_MS });
    await page.waitForFunction(() => /\d+ images?/.test(document.querySelector('#map-status').textContent), null, { timeout: WAIT_MS });
    // the view counts deck.gl's finished frames: wait for one drawn after the data arrived
    await page.waitForFunction(() => Number(document.querySelector('#map').dataset.frames || 0) >= 1, null, { timeout: WAIT_MS });
    await page.locator('#map').screenshot({ path: params.mapShot });
    const status = await page.textContent('#map-status');
    // hover and click a point: find it on screen from the same payload the panel drew
    const target = await pointOnScreen(page);
    await page.mouse.move(target.x, target.y);
    await page.waitForSelector('#map-tooltip:not([hidden])', { timeout: WAIT_MS });
    const hovered = Number(await page.getAttribute('#map-tooltip', 'data-id'));
    await page.waitForFunction(() => document.querySelector('#map-tooltip img').src.startsWith('blob:'), null, { timeout: WAIT_MS });
    await page.waitForSelector('#map-tooltip b', { timeout: WAIT_MS });
    const tooltipName = await page.textContent('#map-tooltip b');
    await page.mouse.click(target.x, target.y);
    await page.waitForSelector('#drawer:not([hidden]) #drawer-fields', { timeout: WAIT_MS });
    await page.keyboard.press('Escape');
    // zooming hides the tooltip; Reset view brings the whole map back (a frame is drawn for it)
    await page.mouse.move(target.x, target.y);
    await page.waitForSelector('#map-tooltip:not([hidden])', { timeout: WAIT_MS });
    await page.mouse.wheel(0, -400);
    await page.waitForSelector('#map-tooltip', { state: 'hidden', timeout: WAIT_MS });
    const framesBefore = Number(await page.getAttribute('#map', 'data-frames'));
    await page.click('#map-reset');
    await page.waitForFunction((n) => Number(document.querySelector('#map').dataset.frames) > n, framesBefore, { timeout: WAIT_MS });
    // Re-layout on demand, then the map narrowed by the search form's generator filter
    await page.click('#map-relayout');
    await page.waitForFunction(() => document.querySelector('#map-status').textContent.includes('layout updated'), null, { timeout: 60000 });
    const relayout = await page.textContent('#map-status');
    await openView(page, 'grid');
    await page.click('#filters summary');
    await page.selectOption('#filter-generator', params.generator);
    await openView(page, 'map');
    await page.waitForFunction((n) => document.querySelector('#map-status').textContent.startsWith(`${n} image`), params.generatorCount, { timeout: WAIT_MS });
    // a text search lights its hits up on the map
    await openView(page, 'grid');
    await page.fill('#search-text', 'a picture');
    await page.press('#search-text', 'Enter');
    await page.waitForFunction(() => document.querySelector('#grid .cell .score'), null, { timeout: WAIT_MS });
    const highlighted = Number(await page.getAttribute('#map', 'data-highlighted'));
    return { status, expected: target.id, hovered, tooltipName, highlighted, relayout, filtered: await page.textContent('#map-status') };
  },

  /** Filters with the album's own pick-lists, chips with Clear, a visible error, sort and the score cut. */
  async filtersAndScores({ page, params }) {
    const countIs = (pred) => page.waitForFunction(pred, null, { timeout: WAIT_MS });
    const count = () => page.textContent('#result-count');
    const ids = () => page.$$eval('#grid .cell', (cells) => cells.map((c) => Number(c.dataset.id)).sort((a, b) => a - b));
    const settle = async (text) => {
      await page.waitForFunction((want) => document.querySelector('#result-count').textContent.startsWith(want), text, { timeout: WAIT_MS });
      await page.waitForFunction(() => [...document.querySelectorAll('#grid .cell')].length > 0, null, { timeout: WAIT_MS });
    };
    await connected(page);
    await thumbnailsShown(page, 1);
    await page.setViewportSize({ width: 320, height: 760 });
    await page.click('#filters summary');
    await page.waitForFunction(() => document.querySelectorAll('#model-options option').length > 0, null, { timeout: WAIT_MS });
    const seen = {
      models: await page.$$eval('#model-options option', (o) => o.map((x) => x.value)),
      generators: await page.$$eval('#filter-generator option', (o) => o.map((x) => x.value)),
      sortNoQuery: await page.$eval('#search-sort', (s) => ({ value: s.value, bestDisabled: s.querySelector('option[value="best"]').disabled })),
    };
    await page.fill('#filter-model', params.modelPart);
    await settle('1 image');
    seen.model = { count: await count(), ids: await ids() };
    await page.click('#filters summary'); // folded away: the chips still say what narrows the grid
    seen.chipsFolded = await page.$$eval('#filter-chips .chip', (chips) => chips.map((c) => c.textContent));
    seen.summary = await page.textContent('#filters summary');
    await page.screenshot({ path: `${params.shotPrefix}-chips-320px.png` });
    await page.click('#filters-clear');
    await settle(`${params.total} images`);
    seen.afterClear = { count: await count(), chipsHidden: await page.$eval('#filter-chips', (b) => b.hidden) };
    await page.click('#filters summary');
    await page.selectOption('#filter-generator', 'unknown');
    await page.waitForFunction((n) => document.querySelector('#result-count').textContent !== `${n} images`, params.total, { timeout: WAIT_MS });
    seen.unknown = await count();
    await page.selectOption('#filter-generator', '');
    await settle(`${params.total} images`);
    await page.fill('#filter-seed', '12ab');
    await page.waitForSelector('#search-error:not([hidden])', { timeout: WAIT_MS });
    seen.seedError = { text: await page.textContent('#search-error'), invalid: await page.$eval('#filter-seed', (i) => i.hasAttribute('aria-invalid')) };
    await page.screenshot({ path: `${params.shotPrefix}-seed-error-320px.png` });
    await page.fill('#filter-seed', '');
    await page.waitForSelector('#search-error', { state: 'hidden', timeout: WAIT_MS });
    await page.fill('#search-keywords', params.keyword);
    await settle('1 image');
    seen.keyword = await ids();
    await page.fill('#search-keywords', '');
    await settle(`${params.total} images`);
    await page.fill('#search-text', 'a colourful picture');
    await page.press('#search-text', 'Enter');
    await page.waitForFunction(() => document.querySelector('#grid .cell .score'), null, { timeout: WAIT_MS });
    seen.ranked = {
      sort: await page.$eval('#search-sort', (s) => s.value),
      count: await count(),
      showAll: await page.$eval('#show-all', (b) => !b.hidden),
      scores: await page.$$eval('#grid .cell .score', (spans) => spans.map((x) => Number(x.textContent))),
    };
    await page.screenshot({ path: `${params.shotPrefix}-scores-320px.png` });
    await page.fill('#search-min-score', '-1');
    await settle(`${params.total} images`);
    seen.minScoreAll = await count();
    return seen;
  },

  /** A new album indexed with the panel open on it: the grid fills by itself, Cancel keeps what was committed,
   * Update/Rebuild are off during a run, Rebuild asks first and keeps the old index on screen. */
  async indexRun({ page, params }) {
    const card = `.album[data-key="${params.key}"]`;
    const line = `${card} .progress-text`;
    const stateIs = (states) => page.waitForFunction(([sel, want]) => want.includes(document.querySelector(sel)?.dataset.state), [line, states], { timeout: INDEX_WAIT_MS });
    const buttons = () => page.$eval(card, (node) => Object.fromEntries([...node.querySelectorAll('.buttons button')].map((b) => [b.dataset.act, { disabled: b.disabled, hidden: b.hidden }])));
    const shownCount = () => page.$$eval('#grid .cell', (cells) => cells.length);
    await connected(page);
    // every text the grid's status lines show, as they change
    await page.evaluate(() => {
      window.seenTexts = new Set();
      const record = () => ['#album-progress', '#grid-empty-text', '#result-count'].forEach((sel) => {
        const node = document.querySelector(sel);
        if (node && !node.closest('[hidden]') && node.textContent) window.seenTexts.add(`${sel} ${node.textContent}`);
      });
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await openView(page, 'albums');
    await page.click('#album-add');
    await page.fill('#album-form input[name="key"]', params.key);
    await page.fill('#album-form input[name="display_name"]', params.name);
    await page.fill('#album-form textarea[name="folders"]', params.folder);
    await page.click('#album-form button[type="submit"]');
    await page.waitForSelector(card, { timeout: WAIT_MS });
    await stateIs(['running', 'queued']);
    const duringRun = { buttons: await buttons(), text: await page.textContent(line) };
    await page.waitForSelector(`#album-picker option[value="${params.key}"]`, { state: 'attached', timeout: WAIT_MS });
    await page.selectOption('#album-picker', params.key);
    await openView(page, 'grid');
    // images show up while the run goes on, without pressing Search
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell').length > 0, null, { timeout: INDEX_WAIT_MS });
    const midRun = { cells: await shownCount(), progressShown: await page.$eval('#album-progress', (p) => !p.hidden) };
    await openView(page, 'albums');
    await page.click(`${card} button[data-act="cancel"]`);
    await stateIs(['cancelled', 'done']);
    const cancelled = { text: await page.textContent(line), buttons: await buttons(), count: await page.textContent(`${card} .count`) };
    const kept = parseInt(cancelled.count, 10);
    // the grid follows the cancelled run by itself: it shows what was kept
    await openView(page, 'grid');
    await page.waitForFunction((n) => document.querySelector('#result-count').textContent === `${n} image${n === 1 ? '' : 's'}`, kept, { timeout: WAIT_MS });
    await page.screenshot({ path: `${params.shotPrefix}-after-cancel.png` });
    // Rebuild asks first; answering Cancel changes nothing
    await openView(page, 'albums');
    await page.click(`${card} button[data-act="rebuild"]`);
    const question = await page.textContent(`${card} .buttons .question`);
    await page.screenshot({ path: `${params.shotPrefix}-rebuild-confirm.png` });
    await page.click(`${card} button[data-act="cancel-confirm"]`);
    const afterNo = await page.textContent(line);
    await page.click(`${card} button[data-act="rebuild"]`);
    await page.click(`${card} button[data-act="confirm-rebuild"]`);
    await stateIs(['running', 'queued']);
    await openView(page, 'grid');
    const duringRebuild = { count: await page.textContent('#result-count'), cells: await shownCount(), kept };
    await page.screenshot({ path: `${params.shotPrefix}-rebuilding.png` });
    // a cancelled rebuild keeps the old index
    await openView(page, 'albums');
    await page.click(`${card} button[data-act="cancel"]`);
    await stateIs(['cancelled', 'done']);
    await openView(page, 'grid');
    const afterRebuildCancel = await page.textContent('#result-count');
    const texts = await page.evaluate(() => [...window.seenTexts]);
    return { duringRun, midRun, cancelled, question, afterNo, duringRebuild, afterRebuildCancel, texts };
  },

  /** Deleting the last album leaves every view empty and saying what to do. */
  async lastAlbumDeleted({ page, params }) {
    await connected(page);
    await thumbnailsShown(page, 1);
    await openView(page, 'albums');
    // the list fills once the view's load answers: an empty list before that is not "no albums left"
    await page.waitForSelector('#album-list .album', { timeout: WAIT_MS });
    for (;;) {
      const key = await page.$eval('#album-list', (list) => list.querySelector('.album')?.dataset.key || null);
      if (!key) break;
      await page.click(`.album[data-key="${key}"] button[data-act="delete"]`);
      await page.click(`.album[data-key="${key}"] button[data-act="confirm-delete"]`);
      await page.waitForSelector(`.album[data-key="${key}"]`, { state: 'detached', timeout: WAIT_MS });
    }
    const albumsNote = await page.textContent('#album-list');
    await page.screenshot({ path: `${params.shotPrefix}-albums.png` });
    await openView(page, 'grid');
    await page.waitForSelector('#grid-empty:not([hidden])', { timeout: WAIT_MS });
    const grid = {
      cells: await page.$$eval('#grid .cell', (cells) => cells.length),
      text: await page.textContent('#grid-empty-text'),
      action: await page.textContent('#grid-empty-action'),
    };
    await page.screenshot({ path: `${params.shotPrefix}-grid.png` });
    await openView(page, 'map');
    const map = {
      text: await page.textContent('#map-empty-text'),
      shown: await page.$eval('#map-empty', (node) => !node.hidden),
      relayoutDisabled: await page.$eval('#map-relayout', (b) => b.disabled),
    };
    await page.screenshot({ path: `${params.shotPrefix}-map.png` });
    await openView(page, 'grid');
    await page.click('#grid-empty-action');
    await page.waitForSelector('#album-form', { timeout: WAIT_MS });
    return { albumsNote, grid, map, formOpened: await page.$eval('#view-albums', (v) => !v.hidden) };
  },

  /** Every view at each width (320 = Chrome's narrowest panel): nothing sticks out sideways; a screenshot each. */
  async layout({ page, params }) {
    await connected(page);
    await thumbnailsShown(page, 1);
    const seen = {};
    for (const width of params.widths) {
      await page.setViewportSize({ width, height: 760 });
      const views = {};
      for (const view of ['grid', 'map', 'albums', 'settings']) {
        await openView(page, view);
        if (view === 'grid') await page.evaluate(() => (document.querySelector('#filters').open = true));
        if (view === 'albums') await page.waitForSelector('.album', { timeout: WAIT_MS });
        if (view === 'settings') await page.waitForSelector('#invokeai-url', { timeout: WAIT_MS });
        views[view] = await sidewaysOverflow(page);
        await page.screenshot({ path: `${params.shotPrefix}-${width}px-${view}.png` });
      }
      await openView(page, 'grid');
      await openDrawer(page, params.id);
      views.drawer = await sidewaysOverflow(page);
      await page.screenshot({ path: `${params.shotPrefix}-${width}px-drawer.png` });
      await page.keyboard.press('Escape');
      const tabs = await page.$$eval('.topbar .tabs button, #connection-dot', (nodes) => nodes.map((n) => n.getBoundingClientRect().right));
      seen[width] = { views, tabsRight: Math.max(...tabs), width: await page.evaluate(() => document.documentElement.clientWidth) };
    }
    // the light theme when the system prefers it
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: `${params.shotPrefix}-light-theme.png` });
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    return { widths: seen, light, dark };
  },

  /** The context menu's handler (called directly: headless has no menu to click) sends data: bytes and an http URL. */
  async contextMenu({ callBackground, params }) {
    const results = [];
    for (const srcUrl of params.srcUrls) {
      results.push(await callBackground('sendRefImage', { menuItemId: 'photomap-ref-image', srcUrl, frameId: 0 }, { id: -1 }));
    }
    return { results };
  },
  ...BOARD_SCENARIOS,
  ...DUPLICATE_SCENARIOS,
  ...MAP_SCENARIOS,
  ...SELECTION_SCENARIOS,
};
