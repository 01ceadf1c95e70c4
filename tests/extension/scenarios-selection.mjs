// Browser scenarios for the grid's multi-select, the batch bar and the drawer's star and Append buttons (see
// scenarios.mjs for how a scenario runs).

import { WAIT_MS, connected, openDrawer, thumbnailsShown } from './scenario-steps.mjs';

const pickedIds = (page) =>
  page.$$eval('#grid .cell.picked', (cells) => cells.map((c) => Number(c.dataset.id)).sort((a, b) => a - b));

async function barState(page) {
  return page.evaluate(() => ({
    visible: !document.querySelector('#selection-bar').hidden,
    count: document.querySelector('#selection-count').textContent,
  }));
}

/** Click a batch button and wait for its outcome line (ok or error), then return it. */
async function batchOutcome(page, act) {
  await page.evaluate(() => document.querySelector('#selection-result').classList.remove('ok', 'error'));
  await act();
  await page.waitForFunction(() => {
    const line = document.querySelector('#selection-result');
    return line.classList.contains('error') || (line.classList.contains('ok') && line.textContent !== 'Working…' && !/^Sending/.test(line.textContent));
  }, null, { timeout: WAIT_MS });
  return page.$eval('#selection-result', (p) => ({ text: p.textContent, ok: p.classList.contains('ok') }));
}

export const SELECTION_SCENARIOS = {
  /**
   * Ctrl-click, Shift-click, Space, Ctrl+A and Esc pick images; the batch bar stars them (the grid marks them),
   * adds them to an InvokeAI board, downloads them as a zip and opens them alone in the grid.
   */
  async gridSelection({ page, params }) {
    await page.setViewportSize({ width: params.width, height: 760 });
    await connected(page);
    const order = await thumbnailsShown(page, params.atLeast);
    const cell = (i) => `#grid .cell[data-id="${order[i]}"]`;
    const seen = { order, barBefore: await barState(page) };
    await page.click(cell(0), { modifiers: ['Control'] });
    seen.afterCtrl = { ...(await barState(page)), picked: await pickedIds(page), drawerOpen: await page.isVisible('#drawer') };
    await page.click(cell(2), { modifiers: ['Shift'] });
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell.picked').length === 3, null, { timeout: WAIT_MS });
    seen.afterShift = { ...(await barState(page)), picked: await pickedIds(page) };
    await page.click(cell(1), { modifiers: ['Control'] }); // Ctrl-click a picked one drops it
    seen.afterUnpick = { ...(await barState(page)), picked: await pickedIds(page) };
    await page.keyboard.press('Space'); // the cursor is on the cell just clicked: Space picks it again
    seen.afterSpace = { ...(await barState(page)), picked: await pickedIds(page) };
    await page.keyboard.press('Escape');
    seen.afterEscape = await barState(page);
    await page.keyboard.press('Control+a');
    await page.waitForFunction((n) => document.querySelector('#selection-count').textContent.startsWith(`${n} `), order.length, { timeout: WAIT_MS });
    seen.afterAll = await barState(page);
    await page.keyboard.press('Escape');

    // two images: star them, see the stars in the grid, add them to a board, zip them, open them alone
    await page.click(cell(0), { modifiers: ['Control'] });
    await page.click(cell(1), { modifiers: ['Control'] });
    seen.chosen = await pickedIds(page);
    await page.screenshot({ path: `${params.shotPrefix}-${params.width}px.png` });
    seen.star = await batchOutcome(page, () => page.click('#selection-star'));
    await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`#grid .cell[data-id="${id}"] .star`)), seen.chosen, { timeout: WAIT_MS });
    seen.starredCells = await page.$$eval('#grid .cell .star', (stars) => stars.map((s) => Number(s.closest('.cell').dataset.id)).sort((a, b) => a - b));
    seen.stillPicked = await pickedIds(page); // the grid asked again; the selection stays
    await page.focus('#selection-board');
    await page.waitForFunction((name) => [...document.querySelectorAll('#selection-board option')].some((o) => o.textContent === name), params.board, { timeout: WAIT_MS });
    seen.board = await batchOutcome(page, () => page.selectOption('#selection-board', { label: params.board }));
    const download = page.waitForEvent('download', { timeout: WAIT_MS });
    seen.zip = await batchOutcome(page, () => page.click('#selection-zip'));
    seen.zipName = (await download).suggestedFilename();
    seen.unstar = await batchOutcome(page, () => page.click('#selection-unstar'));
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell .star').length === 0, null, { timeout: WAIT_MS });
    await page.click('#selection-open');
    await page.waitForFunction((n) => document.querySelectorAll('#grid .cell').length === n, seen.chosen.length, { timeout: WAIT_MS });
    seen.opened = {
      chip: await page.textContent('#filter-chips .chip[data-field="scope"]'),
      count: await page.textContent('#result-count'),
      cells: await page.$$eval('#grid .cell', (cells) => cells.map((c) => Number(c.dataset.id)).sort((a, b) => a - b)),
    };
    await page.click('#filter-chips .chip[data-field="scope"]');
    await page.waitForFunction((n) => document.querySelectorAll('#grid .cell').length >= n, order.length, { timeout: WAIT_MS });
    seen.afterScopeCleared = await page.$$eval('#grid .cell', (cells) => cells.length);
    await page.click('#selection-clear');
    seen.afterClear = await barState(page);
    return seen;
  },

  /** The drawer's star follows the image; Append is its own button beside Use as Ref Image. */
  async drawerStarAppend({ page, params }) {
    await openDrawer(page, params.id);
    const seen = {
      starBefore: await page.$eval('#drawer-star', (b) => b.getAttribute('aria-pressed')),
      append: await page.$eval('#action-append', (b) => ({ hidden: b.hidden, disabled: b.disabled, title: b.title })),
    };
    await page.click('#drawer-star');
    await page.waitForFunction(() => document.querySelector('#drawer-star').getAttribute('aria-pressed') === 'true', null, { timeout: WAIT_MS });
    await page.waitForSelector(`#grid .cell[data-id="${params.id}"] .star`, { state: 'attached', timeout: WAIT_MS });
    seen.starAfter = 'true';
    await page.click('#drawer-star'); // and back: other tests share this album
    await page.waitForFunction(() => document.querySelector('#drawer-star').getAttribute('aria-pressed') === 'false', null, { timeout: WAIT_MS });
    await page.evaluate(() => (document.querySelector('#action-result').className = 'action-result'));
    await page.click('#action-append');
    await page.waitForFunction(() => /ok|error/.test(document.querySelector('#action-result').className), null, { timeout: WAIT_MS });
    seen.appended = await page.$eval('#action-result', (p) => ({ text: p.textContent, ok: p.classList.contains('ok') }));
    await page.screenshot({ path: params.shot });
    return seen;
  },
};
