// Browser scenarios for map (see scenarios.mjs for how a scenario runs).

import { decodeMap, labelPlacements } from '../../extension/sidepanel/map-payload.js';
import { WAIT_MS, connected, openView, pointOnScreen } from './scenario-steps.mjs';

const LASSO_STEPS = 24; // vertices of a drawn circle: round enough, and each a real pointermove

/** Every point and cluster centroid on screen, with the fit the panel uses (as pointOnScreen places its point). */
async function mapOnScreen(page) {
  const { connection } = await page.evaluate(() => chrome.storage.session.get('connection'));
  const album = await page.$eval('#album-picker', (select) => select.value);
  const response = await fetch(`http://127.0.0.1:${connection.port}/api/v1/albums/${album}/map`, {
    headers: { Authorization: `Bearer ${connection.token}` },
  });
  const { header, ids, x, y } = decodeMap(await response.arrayBuffer());
  const rect = await page.$eval('#map', (node) => node.getBoundingClientRect().toJSON());
  const [minX, minY, maxX, maxY] = header.bounds;
  const scale = (0.9 * Math.min(rect.width, rect.height)) / Math.max(maxX - minX, maxY - minY, 1e-6);
  const place = (px, py) => [rect.left + rect.width / 2 + (px - (minX + maxX) / 2) * scale, rect.top + rect.height / 2 + (py - (minY + maxY) / 2) * scale];
  return {
    rect,
    header,
    points: [...ids].map((id, i) => ({ id: Number(id), at: place(x[i], y[i]) })),
    labels: labelPlacements(header.clusters, header.bounds).map((c) => ({ ...c, at: place(c.x, c.y) })),
  };
}

/** Press, move through `path` ([[x, y], ...] page pixels), then (unless `beforeUp` says otherwise) release. */
async function drag(page, path, { beforeUp = null } = {}) {
  await page.mouse.move(...path[0]);
  await page.mouse.down();
  for (const point of path.slice(1)) await page.mouse.move(...point);
  if (beforeUp) await beforeUp();
  await page.mouse.up();
}

const circle = ([cx, cy], radius) =>
  Array.from({ length: LASSO_STEPS + 1 }, (_, i) => [cx + radius * Math.cos((2 * Math.PI * i) / LASSO_STEPS), cy + radius * Math.sin((2 * Math.PI * i) / LASSO_STEPS)]);

const mapData = (page) => page.$eval('#map', (node) => ({ ...node.dataset }));

export const MAP_SCENARIOS = {
  /**
   * The Lasso button (and Shift+drag) select what a freehand loop encloses without panning the view; a wobbling
   * click still opens a point, Esc drops a lasso; a cluster label is a button that filters the grid to its cluster.
   */
  async mapLasso({ page, params }) {
    await connected(page);
    await openView(page, 'map');
    await page.waitForSelector('#map canvas', { timeout: WAIT_MS });
    await page.waitForFunction(() => /\d+ images?/.test(document.querySelector('#map-status').textContent), null, { timeout: WAIT_MS });
    await page.waitForFunction(() => Number(document.querySelector('#map').dataset.frames || 0) >= 1, null, { timeout: WAIT_MS });
    let target = await pointOnScreen(page);
    let map = await mapOnScreen(page);
    // the batch bar shows up under the map once something is selected, and the map gets shorter: look again
    const relocate = async () => {
      target = await pointOnScreen(page);
      map = await mapOnScreen(page);
    };
    const others = map.points.filter((p) => p.id !== target.id);
    const gap = Math.min(...others.map((p) => Math.hypot(p.at[0] - target.x, p.at[1] - target.y)));
    const seen = { count: map.points.length, target: target.id, gapPx: gap, labels: map.labels.map((c) => c.label) };
    const selectedIs = (n) => page.waitForFunction((want) => document.querySelector('#map').dataset.selected === String(want), n, { timeout: WAIT_MS });

    // 1. Lasso mode: a loop around the most isolated point selects it alone
    await page.click('#map-lasso');
    seen.pressed = await page.getAttribute('#map-lasso', 'aria-pressed');
    await drag(page, circle([target.x, target.y], Math.max(8, Math.min(gap / 2, 30))));
    await selectedIs(1);
    seen.one = { ...(await mapData(page)), bar: await page.textContent('#selection-count') };
    await relocate();

    // 2. a click that wobbles (under the lasso's few pixels) is a click: it opens the point
    await drag(page, [[target.x, target.y], [target.x + 1, target.y + 1], [target.x + 2, target.y]]);
    await page.waitForSelector('#drawer:not([hidden]) #drawer-fields', { timeout: WAIT_MS });
    await page.keyboard.press('Escape');
    await page.waitForSelector('#drawer', { state: 'hidden', timeout: WAIT_MS });
    seen.afterClick = await mapData(page);

    // 3. Esc while drawing a loop around everything: nothing is selected, the overlay goes
    const around = () => {
      const { left, top, width, height } = map.rect;
      // ends far from where it began (the loop closes by itself): had deck panned along, the map would have moved
      return [[left + 3, top + 3], [left + width - 3, top + 3], [left + width - 3, top + height - 3], [left + 3, top + height - 3]];
    };
    await drag(page, around(), {
      beforeUp: async () => {
        seen.overlayWhileDrawing = await page.$eval('#map-lasso-overlay', (svg) => !svg.hasAttribute('hidden') && svg.querySelector('path').getAttribute('d').length > 0);
        await page.keyboard.press('Escape');
        seen.overlayAfterEsc = await page.$eval('#map-lasso-overlay', (svg) => !svg.hasAttribute('hidden'));
      },
    });
    seen.afterEsc = await mapData(page);

    // 4. out of lasso mode, Shift+drag around everything selects everything; the view has not moved
    await page.click('#map-lasso');
    seen.released = await page.getAttribute('#map-lasso', 'aria-pressed');
    await page.keyboard.down('Shift');
    await drag(page, around(), { beforeUp: () => page.screenshot({ path: params.lassoShot }) });
    await page.keyboard.up('Shift');
    await selectedIs(map.points.length);
    seen.all = { ...(await mapData(page)), bar: await page.textContent('#selection-count') };
    await relocate();
    await page.mouse.move(target.x, target.y);
    await page.waitForSelector('#map-tooltip:not([hidden])', { timeout: WAIT_MS });
    seen.hoveredAfter = Number(await page.getAttribute('#map-tooltip', 'data-id'));
    await page.locator('#map').screenshot({ path: params.selectedShot });

    // 5. a plain drag still pans (deck's controller is untouched outside a lasso)
    const { left, top, width, height } = map.rect;
    const framesBefore = Number(await page.getAttribute('#map', 'data-frames'));
    await drag(page, [[left + width / 2, top + height / 2], [left + width / 2 + 20, top + height / 2], [left + width / 2 + 40, top + height / 2 + 10]]);
    await page.waitForFunction((n) => Number(document.querySelector('#map').dataset.frames) > n, framesBefore, { timeout: WAIT_MS });
    await page.mouse.move(target.x, target.y);
    seen.tooltipAfterPan = await page.evaluate(() => {
      const tooltip = document.querySelector('#map-tooltip');
      return tooltip.hidden ? null : Number(tooltip.dataset.id);
    });
    const framesPanned = Number(await page.getAttribute('#map', 'data-frames'));
    await page.click('#map-reset');
    await page.waitForFunction((n) => Number(document.querySelector('#map').dataset.frames) > n, framesPanned, { timeout: WAIT_MS });

    // 6. a cluster label: the pointer cursor on it, a click filters the grid to that cluster (a chip says so)
    const label = map.labels[0];
    if (label) {
      // the point the label's box surely covers: its centre, or just inside its anchored end
      const inward = label.anchor === 'start' ? 10 : label.anchor === 'end' ? -10 : 0;
      const [lx, ly] = [label.at[0] + inward, label.at[1]];
      await page.mouse.move(lx, ly);
      await page.waitForFunction(() => getComputedStyle(document.querySelector('#map canvas')).cursor === 'pointer', null, { timeout: WAIT_MS });
      seen.labelCursor = 'pointer';
      await page.mouse.click(lx, ly);
      await page.waitForSelector('#view-grid:not([hidden])', { timeout: WAIT_MS });
      await page.waitForSelector('#filter-chips:not([hidden]) .chip', { timeout: WAIT_MS });
      seen.clicked = { cluster: await page.getAttribute('#map', 'data-cluster'), members: label.members, label: label.label };
      seen.chips = await page.$$eval('#filter-chips .chip', (chips) => chips.map((c) => ({ field: c.dataset.field, text: c.textContent })));

      // 7. the same from the keyboard: the cluster list beside the map's buttons is in the tab order
      await openView(page, 'map');
      await page.waitForSelector('#map-clusters:not([hidden])', { timeout: WAIT_MS });
      seen.clusterList = await page.$eval('#map-clusters', (select) => ({
        options: [...select.options].map((o) => o.textContent),
        tabbable: select.tabIndex >= 0 && !select.disabled,
      }));
      const choice = map.labels.length > 1 ? 2 : 1; // another label than the one clicked, where there is one
      await page.focus('#map-clusters');
      await page.selectOption('#map-clusters', String(choice - 1));
      await page.waitForSelector('#view-grid:not([hidden])', { timeout: WAIT_MS });
      const wanted = map.labels[choice - 1].label;
      await page.waitForFunction(
        (text) => [...document.querySelectorAll('#filter-chips .chip')].some((c) => c.textContent.startsWith(`Cluster: ${text}`)),
        wanted,
        { timeout: WAIT_MS },
      );
      seen.picked = { label: wanted, members: map.labels[choice - 1].members, cluster: await page.getAttribute('#map', 'data-cluster') };
    }
    return seen;
  },
};
