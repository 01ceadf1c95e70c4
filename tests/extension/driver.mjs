// Runs one browser scenario: Debian's chromium (headless=new) with the unpacked extension, a fresh profile holding
// the native host manifest, the side panel page opened as a tab. Prints one line `RESULT {json}` for pytest.
//
//   node tests/extension/driver.mjs <config.json>
//   config: {scenario, extensionDir, profileDir, screenshot, env, params}

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SCENARIOS } from './scenarios.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// playwright-core is the extension's dev dependency: resolve it from extension/node_modules.
const require = createRequire(path.join(HERE, '..', '..', 'extension', 'package.json'));
const { chromium } = require('playwright-core');

const EXTENSION_ID = 'cohnibkfepkdihajabdpbcdbpkfcoaig'; // fixed by the `key` in extension/manifest.json
const PANEL_URL = `chrome-extension://${EXTENSION_ID}/sidepanel/sidepanel.html`;

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));
const scenario = SCENARIOS[config.scenario];
if (!scenario) throw new Error(`unknown scenario ${config.scenario}`);

const context = await chromium.launchPersistentContext(config.profileDir, {
  executablePath: '/usr/bin/chromium',
  headless: false, // `--headless=new` below: the old headless mode cannot load extensions
  env: { ...process.env, ...config.env },
  viewport: { width: 420, height: 860 }, // a side panel's shape
  colorScheme: 'dark', // the tests' colours are the dark theme's; the layout scenario checks light on its own
  args: [
    '--headless=new',
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-angle=swiftshader', // WebGL for the map without a GPU
    '--enable-unsafe-swiftshader',
    `--load-extension=${config.extensionDir}`,
    `--disable-extensions-except=${config.extensionDir}`,
  ],
});
const problems = [];
let result;
let page;
try {
  const worker = context.serviceWorkers()[0] || (await context.waitForEvent('serviceworker', { timeout: 15000 }));
  page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
  await page.goto(PANEL_URL);
  const stopWorker = async () => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
  };
  // the worker's test hook (globalThis.photomap); the worker may have been restarted, so look it up each call
  const callBackground = async (name, ...args) => {
    const current = context.serviceWorkers()[0] || (await context.waitForEvent('serviceworker', { timeout: 15000 }));
    return current.evaluate(([fn, fnArgs]) => globalThis.photomap[fn](...fnArgs), [name, args]);
  };
  const env = { context, page, worker, params: config.params, panelUrl: PANEL_URL, problems, browser: 'chromium', stopWorker, callBackground };
  result = { ok: true, ...(await scenario(env)) };
} catch (err) {
  result = { ok: false, error: String(err && err.stack ? err.stack : err) };
} finally {
  if (page && config.screenshot) await page.screenshot({ path: config.screenshot, fullPage: true }).catch(() => {});
  result = { ...result, problems };
  await context.close().catch(() => {});
}
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
