// Steps the browser scenarios share: waiting for the connection, opening views and the drawer, reading the map's
// points with the panel's own decoder. Every wait is a deadline, never a sleep.

import { decodeMap } from '../../extension/sidepanel/map-payload.js';

export const WAIT_MS = 20000;
// An index run with its map fit: seconds on an idle machine, minutes on a loaded 2-core CI box (a deadline, not a sleep).
export const INDEX_WAIT_MS = 180000;

export async function connected(page) {
  await page.waitForSelector('body[data-connection="connected"]', { timeout: WAIT_MS });
}

/** The stored connection record once a handshake has settled ({state: 'connecting'} records carry no token). */
export async function settledConnection(page) {
  const handle = await page.waitForFunction(async () => {
    const { connection } = await chrome.storage.session.get('connection');
    return connection && connection.state === 'connected' && connection;
  }, null, { timeout: WAIT_MS });
  return handle.jsonValue();
}

export async function openView(page, view) {
  await page.click(`.tabs button[data-view="${view}"]`);
  await page.waitForSelector(`#view-${view}:not([hidden])`);
}

/** Wait for the grid to show thumbnails (object URLs) and return how many cells it has. */
export async function thumbnailsShown(page, atLeast) {
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('#grid .cell img')].filter((img) => img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0).length >= n,
    atLeast,
    { timeout: WAIT_MS },
  );
  return page.$$eval('#grid .cell', (cells) =>
    cells.sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index)).map((c) => Number(c.dataset.id)),
  );
}

export async function openDrawer(page, id) {
  await connected(page);
  await thumbnailsShown(page, 1);
  await page.click(`#grid .cell[data-id="${id}"]`);
  await page.waitForSelector('#drawer:not([hidden]) #drawer-fields dd');
  await page.waitForSelector('#drawer[data-actions="ready"]', { state: 'attached', timeout: WAIT_MS }); // buttons set
}

export async function drawerFields(page) {
  return page.$$eval('#drawer-fields dd[data-field]', (dds) => Object.fromEntries(dds.map((dd) => [dd.dataset.field, dd.textContent])));
}

export async function probeHint(page, url) {
  await page.fill('#invokeai-url', url);
  // the hint only changes once the debounced probe has answered
  await page.waitForFunction(
    () => {
      const hint = document.querySelector('#invokeai-url-hint');
      return hint.classList.contains('error') || hint.classList.contains('ok');
    },
    null,
    { timeout: WAIT_MS },
  );
  return page.$eval('#invokeai-url-hint', (hint) => ({
    text: hint.textContent,
    isError: hint.classList.contains('error'),
    color: getComputedStyle(hint).color,
    icon: getComputedStyle(hint, '::before').content,
    rowsVisible: !document.querySelector('#invokeai-auth-rows').hidden,
  }));
}

/**
 * Screen position of the map's most isolated point, fetched and decoded with the panel's own decoder and placed
 * with the fit the panel uses (the view centred on the bounds, 90 % of the shorter side; y grows downwards).
 */
export async function pointOnScreen(page) {
  const { connection } = await page.evaluate(() => chrome.storage.session.get('connection'));
  const album = await page.$eval('#album-picker', (select) => select.value);
  const response = await fetch(`http://127.0.0.1:${connection.port}/api/v1/albums/${album}/map`, {
    headers: { Authorization: `Bearer ${connection.token}` },
  });
  const { header, ids, x, y } = decodeMap(await response.arrayBuffer());
  let best = 0;
  let bestGap = -1;
  for (let i = 0; i < x.length; i += 1) {
    let gap = Infinity;
    for (let j = 0; j < x.length; j += 1) if (j !== i) gap = Math.min(gap, Math.hypot(x[i] - x[j], y[i] - y[j]));
    if (gap > bestGap) [best, bestGap] = [i, gap];
  }
  const rect = await page.$eval('#map', (node) => node.getBoundingClientRect().toJSON());
  const [minX, minY, maxX, maxY] = header.bounds;
  const scale = (0.9 * Math.min(rect.width, rect.height)) / Math.max(maxX - minX, maxY - minY, 1e-6);
  return {
    id: Number(ids[best]),
    x: rect.left + rect.width / 2 + (x[best] - (minX + maxX) / 2) * scale,
    y: rect.top + rect.height / 2 + (y[best] - (minY + maxY) / 2) * scale,
  };
}

/** Visible elements sticking out of the window (or of their view) sideways, and whether the page scrolls sideways. */
export async function sidewaysOverflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    const visible = [...document.querySelectorAll('body *')].filter((node) => node.getClientRects().length && getComputedStyle(node).visibility !== 'hidden');
    for (const node of visible) {
      if (node.closest('#grid .grid-inner, #map')) continue; // inside their own scroll/canvas areas
      const rect = node.getBoundingClientRect();
      if (rect.width === 0) continue;
      if (rect.right > width + 0.5 || rect.left < -0.5) out.push(`${node.tagName.toLowerCase()}${node.id ? `#${node.id}` : ''}.${node.className}: ${Math.round(rect.left)}..${Math.round(rect.right)} of ${width}`);
    }
    const views = [...document.querySelectorAll('.view:not([hidden]), #drawer:not([hidden])')];
    for (const view of views) if (view.scrollWidth > view.clientWidth + 1) out.push(`${view.id} scrolls sideways (${view.scrollWidth} > ${view.clientWidth})`);
    return { scrollsSideways: document.documentElement.scrollWidth > width, out: out.slice(0, 12) };
  });
}

