// Browser scenarios for boards (see scenarios.mjs for how a scenario runs).

import { WAIT_MS, INDEX_WAIT_MS, connected, openView, probeHint, settledConnection } from './scenario-steps.mjs';

const FORM = '#album-form';
const BOARDS = '#album-boards';

/** The card's progress line once `done(line)` holds for it (data-state, data-paused), as {text, state, paused}. */
async function progressOnCard(page, card, wanted, timeout = INDEX_WAIT_MS) {
  await page.waitForFunction(
    ([sel, want]) => {
      const line = document.querySelector(`${sel} .progress-text`);
      return line && Object.entries(want).every(([name, value]) => line.dataset[name] === value);
    },
    [card, wanted],
    { timeout },
  );
  return page.$eval(`${card} .progress-text`, (line) => ({
    text: line.textContent,
    state: line.dataset.state,
    paused: line.dataset.paused,
    colour: getComputedStyle(line).color,
  }));
}

/** A call to the daemon from the page, as another client would make it (the panel itself is not asked). */
async function callDaemon(page, method, path, body) {
  const { port, token } = await settledConnection(page);
  return page.evaluate(
    async ([url, verb, json, bearer]) => {
      const response = await fetch(url, {
        method: verb,
        headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(json),
      });
      return response.status;
    },
    [`http://127.0.0.1:${port}/api/v1${path}`, method, body, token],
  );
}

export const BOARD_SCENARIOS = {
  /**
   * A board album made in the Albums form: first without an InvokeAI URL (the daemon's message and the way to
   * Settings), then with the fake server set there; nothing ticked (the daemon's 422), then one board; indexed;
   * edited to add Uncategorized; paused while the server is away, and resumed by a run nobody started in the panel.
   */
  async boardAlbum({ page, params }) {
    const seen = {};
    const card = `.album[data-key="${params.key}"]`;
    await connected(page);
    await openView(page, 'albums');
    await page.click('#album-add');
    await page.check(`${FORM} input[name="source"][value="invokeai"]`);
    await page.waitForSelector(`${BOARDS} .board-status.error`, { timeout: WAIT_MS });
    seen.noUrl = {
      status: await page.textContent(`${BOARDS} .board-status`),
      help: await page.textContent(`${BOARDS} .board-help`),
      offered: await page.$$eval(`${BOARDS} input[type="checkbox"]`, (inputs) => inputs.map((i) => i.value)),
      foldersShown: await page.isVisible(`${FORM} textarea[name="folders"]`),
    };
    await page.screenshot({ path: `${params.shotPrefix}-no-url.png` });

    await page.click(`${BOARDS} button[data-act="open-settings"]`);
    await page.waitForSelector('#view-settings:not([hidden]) #invokeai-url');
    seen.probe = await probeHint(page, params.invokeaiUrl);
    // back in Albums the open form lists the server's boards by itself
    await openView(page, 'albums');
    await page.waitForSelector(`${BOARDS} input[value="${params.boardId}"]`, { timeout: WAIT_MS });
    seen.choices = await page.$$eval(`${BOARDS} label`, (labels) => labels.map((l) => l.textContent.trim()));
    seen.statusAfterUrl = await page.textContent(`${BOARDS} .board-status`);

    await page.fill(`${FORM} input[name="key"]`, params.key);
    await page.fill(`${FORM} input[name="display_name"]`, params.name);
    await page.click(`${FORM} button[type="submit"]`);
    await page.waitForSelector('#album-form-message.error', { timeout: WAIT_MS });
    seen.nothingTicked = await page.textContent('#album-form-message');
    // "All" covers every board: the single boards are greyed while it is ticked
    await page.check(`${BOARDS} input[value="all"]`);
    seen.othersDisabledUnderAll = await page.$$eval(`${BOARDS} .board-list input`, (inputs) => inputs.every((i) => i.disabled));
    await page.uncheck(`${BOARDS} input[value="all"]`);
    await page.check(`${BOARDS} input[value="${params.boardId}"]`);
    await page.click(`${FORM} button[type="submit"]`);
    await page.waitForSelector(card, { timeout: WAIT_MS });
    seen.formGone = (await page.$(FORM)) === null;
    seen.indexed = await progressOnCard(page, card, { state: 'done' });
    await page.waitForFunction(
      ([sel, text]) => document.querySelector(`${sel} .count`).textContent === text,
      [card, params.expectedCount],
      { timeout: WAIT_MS },
    );
    await page.waitForFunction((sel) => !/board [0-9a-f]{8}…/.test(document.querySelector(`${sel} .boards`).textContent), card, { timeout: WAIT_MS });
    seen.card = {
      boards: await page.textContent(`${card} .boards`),
      count: await page.textContent(`${card} .count`),
      folderList: (await page.$(`${card} .folders`)) !== null,
    };
    await page.screenshot({ path: `${params.shotPrefix}-indexed.png` });

    await page.click(`${card} button[data-act="edit"]`);
    await page.waitForSelector(`${BOARDS} .board-list[data-ready="true"]`, { timeout: WAIT_MS });
    seen.edit = {
      foldersShown: await page.isVisible(`${FORM} textarea[name="folders"]`),
      sourceRadios: await page.$$eval(`${FORM} input[name="source"]`, (inputs) => inputs.length),
      ticked: await page.$$eval(`${BOARDS} input:checked`, (inputs) => inputs.map((i) => i.value)),
    };
    await page.check(`${BOARDS} input[value="none"]`);
    await page.click(`${FORM} button[type="submit"]`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .boards`)?.textContent.includes('Uncategorized'), card, { timeout: WAIT_MS });
    seen.edited = { boards: await page.textContent(`${card} .boards`), progress: await progressOnCard(page, card, { state: 'done' }) };

    // The server goes away and a run fails: the card says "Paused" by itself (nothing was pressed in the panel) ...
    seen.deadSaved = await callDaemon(page, 'PUT', '/settings/invokeai', { url: params.deadUrl });
    seen.runAsked = await callDaemon(page, 'POST', `/albums/${params.key}/index`, { mode: 'update' });
    seen.paused = await progressOnCard(page, card, { paused: 'true' }, WAIT_MS);
    seen.barHiddenWhilePaused = await page.$eval(`${card} progress`, (bar) => bar.hidden);
    await page.screenshot({ path: `${params.shotPrefix}-paused.png` });
    // ... and a later run, once the server is back, clears it
    await callDaemon(page, 'PUT', '/settings/invokeai', { url: params.invokeaiUrl });
    await callDaemon(page, 'POST', `/albums/${params.key}/index`, { mode: 'update' });
    seen.resumed = await progressOnCard(page, card, { paused: 'false', state: 'done' });
    return seen;
  },
};
