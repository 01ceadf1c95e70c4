// Browser scenarios for the near-duplicates screen (see scenarios.mjs for how a scenario runs).

import { WAIT_MS, connected, sidewaysOverflow } from './scenario-steps.mjs';

/** Switch the panel to `album` from the grid, then open its near-duplicates screen from the result line. */
async function openDuplicatesOf(page, album) {
  await page.waitForSelector(`#album-picker option[value="${album}"]`, { state: 'attached', timeout: WAIT_MS });
  await page.selectOption('#album-picker', album);
  await page.click('#find-duplicates');
  await page.waitForSelector('#view-duplicates:not([hidden])', { timeout: WAIT_MS });
}

/** Wait until the screen has settled on an answer (groups, the empty state or an error) and return what it shows. */
async function screen(page) {
  await page.waitForFunction(
    () => document.querySelector('#dup-groups .dup-group') || !document.querySelector('#dup-empty').hidden || !document.querySelector('#dup-error').hidden,
    null,
    { timeout: WAIT_MS },
  );
  return page.evaluate(() => ({
    summary: document.querySelector('#dup-summary').textContent,
    threshold: document.querySelector('#dup-threshold').value,
    shownValue: document.querySelector('.dup-threshold-value').textContent,
    empty: document.querySelector('#dup-empty').hidden ? null : document.querySelector('#dup-empty').innerText,
    lower: document.querySelector('#dup-lower').hidden ? null : document.querySelector('#dup-lower').textContent,
    error: document.querySelector('#dup-error').hidden ? null : document.querySelector('#dup-error').textContent,
    more: !document.querySelector('#dup-more').hidden,
    groups: [...document.querySelectorAll('#dup-groups .dup-group')].map((group) => ({
      ids: [...group.querySelectorAll('.dup-member')].map((m) => Number(m.dataset.id)),
      head: group.querySelector('.dup-group-head').innerText,
      names: [...group.querySelectorAll('.dup-name')].map((n) => n.textContent),
      details: [...group.querySelectorAll('.dup-details')].map((n) => n.textContent),
    })),
  }));
}

/** Move the similarity slider as a user would (the value, then the release event the range input fires). */
async function slideTo(page, value) {
  await page.$eval('#dup-threshold', (input, v) => {
    input.value = v;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

export const DUPLICATE_SCENARIOS = {
  /**
   * An album holding two copies of one image (and a different one) shows them as one group side by side, with
   * names and dimensions; a thumbnail opens the drawer; the slider asks again; an album without copies says so;
   * an answer for the album left behind never reaches the screen. Screenshots at 320 px and 700 px.
   */
  async duplicates({ page, params }) {
    await connected(page);
    await openDuplicatesOf(page, params.album);
    const seen = { first: await screen(page) };
    // captions and thumbnails arrive after the groups (lazily, for the groups in view)
    await page.waitForFunction(
      () => {
        const members = [...document.querySelectorAll('#dup-groups .dup-member')];
        const ready = (m) => {
          const img = m.querySelector('img');
          return m.querySelector('.dup-details').textContent && img.src.startsWith('blob:') && img.naturalWidth > 0;
        };
        return members.length > 0 && members.every(ready);
      },
      null,
      { timeout: WAIT_MS },
    );
    seen.captioned = await screen(page);
    for (const width of [320, 700]) {
      await page.setViewportSize({ width, height: 760 });
      seen[`overflow${width}`] = await sidewaysOverflow(page);
      seen[`columns${width}`] = await page.$eval('#dup-groups .dup-group', (group) => {
        const tops = [...group.querySelectorAll('.dup-member')].map((m) => Math.round(m.getBoundingClientRect().top));
        return { sameRow: new Set(tops).size === 1, thumbWidth: group.querySelector('.dup-thumb').getBoundingClientRect().width };
      });
      await page.screenshot({ path: `${params.shotPrefix}-${width}px.png` });
    }
    await page.setViewportSize({ width: 420, height: 760 });

    // a thumbnail opens that image in the drawer
    const target = seen.captioned.groups[0].ids[1];
    await page.click(`#dup-groups .dup-member[data-id="${target}"] .dup-thumb`);
    await page.waitForSelector('#drawer:not([hidden]) #drawer-fields dd[data-field="file_name"]', { timeout: WAIT_MS });
    seen.drawer = { id: target, file: await page.textContent('#drawer-fields dd[data-field="file_name"]') };
    // ← walks to the copy beside it on this screen (not to the grid's neighbour)
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(
      (before) => document.querySelector('#drawer-fields dd[data-field="file_name"]').textContent !== before,
      seen.drawer.file,
      { timeout: WAIT_MS },
    );
    seen.stepped = { id: seen.captioned.groups[0].ids[0], file: await page.textContent('#drawer-fields dd[data-field="file_name"]') };
    seen.stayedOnScreen = await page.$eval('#view-duplicates', (view) => !view.hidden);
    await page.click('#drawer-close');
    await page.waitForSelector('#drawer', { state: 'hidden', timeout: WAIT_MS });

    // the slider asks the daemon again: identical copies stay a group at the strictest setting
    const asked = page.waitForRequest((r) => r.url().includes(`/albums/${params.album}/duplicates?threshold=0.99`), { timeout: WAIT_MS });
    await slideTo(page, '0.99');
    await asked;
    await page.waitForFunction(() => document.querySelector('#dup-summary').textContent.includes('0.99'), null, { timeout: WAIT_MS });
    seen.strict = await screen(page);

    // Stale answer: the next request for this album is held until the panel has moved on to the other album.
    let release;
    const held = new Promise((resolve) => (release = resolve));
    const leftBehind = `/albums/${params.album}/duplicates?threshold=0.98`;
    await page.route((url) => url.href.includes(leftBehind), async (route) => {
      await held;
      await route.continue().catch(() => {}); // the panel may have aborted it meanwhile
    });
    const stale = page.waitForRequest((r) => r.url().includes(leftBehind), { timeout: WAIT_MS });
    await slideTo(page, '0.98');
    await stale;
    await page.click('.dup-back'); // Back to the grid, then the other album's screen
    await page.waitForSelector('#view-grid:not([hidden])', { timeout: WAIT_MS });
    seen.backToGrid = true;
    await openDuplicatesOf(page, params.otherAlbum);
    seen.other = await screen(page);
    await page.evaluate(() => {
      window.staleGroups = 0;
      new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes) if (node.classList?.contains('dup-group')) window.staleGroups += 1;
      }).observe(document.querySelector('#dup-groups'), { childList: true });
    });
    const settled = stale.then((request) => request.response().catch(() => null));
    release();
    await settled; // answered or aborted: either way it has come back before the next step
    await page.screenshot({ path: `${params.shotPrefix}-empty.png` });
    // "Try 0.90" lowers the threshold: a round trip after the stale answer came back, and still nothing here
    await page.click('#dup-lower');
    const settledAtMin = () =>
      document.querySelector('.dup-threshold-value').textContent === '0.90' &&
      !document.querySelector('#dup-empty').hidden &&
      document.querySelector('#dup-lower').hidden;
    await page.waitForFunction(settledAtMin, null, { timeout: WAIT_MS });
    seen.lowered = await screen(page);
    seen.staleGroups = await page.evaluate(() => window.staleGroups);
    return seen;
  },
};
