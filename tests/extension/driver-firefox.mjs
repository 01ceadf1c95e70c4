// Runs a group of browser scenarios in one Firefox: Debian's firefox-esr, headless, driven over WebDriver BiDi by
// puppeteer-core (no browser is downloaded). The add-on is installed as a temporary add-on, the sidebar page is
// opened as a tab, one fresh tab per scenario. Native messaging reads the host manifest from
// $HOME/.mozilla/native-messaging-hosts, so the config's homeDir is a temp HOME holding it.
// Prints one line `RESULT {json}` for pytest: {ok, results: {scenario: {...}}, problems}.
//
//   node tests/extension/driver-firefox.mjs <config.json>
//   config: {scenarios: [{name, params, screenshot}], extensionDir, profileDir, homeDir, env}

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SCENARIOS } from './scenarios.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, '..', '..', 'extension', 'package.json'));
const puppeteer = require('puppeteer-core');

const ADDON_ID = 'photomap@photomap.dev'; // extension/manifest.firefox.json browser_specific_settings.gecko.id
// Firefox gives each install a random UUID; this pref pins it, so the test knows the panel's URL.
const ADDON_UUID = '6d1f3c4e-2b7a-4f0e-9c55-0a9e1f7b3d21';
const PANEL_URL = `moz-extension://${ADDON_UUID}/sidepanel/sidepanel.html`;
const STEP_MS = 20000;

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));

/**
 * The subset of Playwright's Page that scenarios.mjs uses, over a puppeteer (BiDi) page, so both browsers run the
 * very same scenario code. Playwright's `state` maps to puppeteer's visible/hidden; `fill` sets the value and fires
 * the input event the panel listens to.
 */
function playwrightLike(page) {
  const wrapped = {
    raw: page,
    keyboard: page.keyboard,
    mouse: page.mouse,
    async goto(url) {
      // BiDi refuses moz-extension navigations without system access, and then loses track of the load: wait for
      // the document ourselves.
      page.goto(url, { timeout: STEP_MS }).catch(() => {});
      await page.waitForFunction((want) => location.href === want && document.readyState === 'complete', { timeout: STEP_MS, polling: 100 }, url);
    },
    waitForSelector(selector, opts = {}) {
      const state = opts.state || 'visible';
      const options = { timeout: opts.timeout ?? STEP_MS, visible: state === 'visible', hidden: state === 'hidden' || state === 'detached' };
      return page.waitForSelector(selector, options);
    },
    waitForFunction(fn, arg, opts = {}) {
      return page.waitForFunction(fn, { timeout: opts.timeout ?? STEP_MS, polling: 100 }, arg);
    },
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    $eval: (selector, fn, arg) => page.$eval(selector, fn, arg),
    $$eval: (selector, fn, arg) => page.$$eval(selector, fn, arg),
    textContent: (selector) => page.$eval(selector, (node) => node.textContent),
    getAttribute: (selector, name) => page.$eval(selector, (node, attr) => node.getAttribute(attr), name),
    isChecked: (selector) => page.$eval(selector, (node) => node.checked),
    click: (selector) => page.click(selector),
    focus: (selector) => page.focus(selector),
    async fill(selector, value) {
      await page.$eval(selector, (node, text) => {
        node.focus();
        node.value = text;
        node.dispatchEvent(new Event('input', { bubbles: true }));
      }, value);
    },
    async press(selector, key) {
      await page.focus(selector);
      await page.keyboard.press(key);
    },
    async check(selector) {
      if (!(await wrapped.isChecked(selector))) await page.click(selector);
    },
    async selectOption(selector, choice) {
      const value = typeof choice === 'string' ? choice : await page.$eval(selector, (select, label) => [...select.options].find((o) => o.textContent === label)?.value, choice.label);
      await page.select(selector, value);
    },
    waitForResponse: (predicate) => page.waitForResponse(predicate, { timeout: STEP_MS }),
    screenshot: (opts) => page.screenshot(opts),
    setViewportSize: (size) => page.setViewport(size),
  };
  return wrapped;
}

/** The background script's test hook (globalThis.photomap), reached from an extension page. */
function backgroundCaller(page) {
  return (name, ...args) =>
    page.evaluate(async ([fn, fnArgs]) => {
      const background = await browser.runtime.getBackgroundPage();
      // the answer comes from the background's compartment: hand back plain JSON
      return JSON.parse(JSON.stringify(await background.photomap[fn](...fnArgs)));
    }, [name, args]);
}

const browserProcess = await puppeteer.launch({
  browser: 'firefox',
  executablePath: '/usr/bin/firefox-esr',
  headless: true,
  userDataDir: config.profileDir,
  env: { ...process.env, ...config.env, HOME: config.homeDir },
  defaultViewport: { width: 420, height: 860 }, // a sidebar's shape
  // lets BiDi open moz-extension:// pages (the panel) in a tab; nothing else in the tests relies on it
  args: ['--remote-allow-system-access'],
  extraPrefsFirefox: {
    'extensions.webextensions.uuids': JSON.stringify({ [ADDON_ID]: ADDON_UUID }),
    'webgl.force-enabled': true, // the map's deck.gl canvas on a machine without a GPU
    'layout.css.prefers-color-scheme.content-override': 0, // dark, like the Chromium runs (the colours tests check)
  },
});
const problems = [];
const results = {};
let ok = true;
let error;
try {
  await browserProcess.installExtension(config.extensionDir);
  for (const { name, params, screenshot } of config.scenarios) {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(`unknown scenario ${name}`);
    const raw = await browserProcess.newPage();
    raw.on('pageerror', (err) => problems.push(`${name}: pageerror: ${err.message}`));
    raw.on('console', (msg) => msg.type() === 'error' && problems.push(`${name}: console: ${msg.text()}`));
    const page = playwrightLike(raw);
    try {
      await page.goto(PANEL_URL);
      const env = { page, params, panelUrl: PANEL_URL, problems, browser: 'firefox', callBackground: backgroundCaller(raw) };
      results[name] = await scenario(env);
    } catch (err) {
      ok = false;
      error = `${name}: ${err && err.stack ? err.stack : err}`;
    } finally {
      if (screenshot) await raw.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      await raw.close().catch(() => {});
    }
    if (!ok) break;
  }
} catch (err) {
  ok = false;
  error = String(err && err.stack ? err.stack : err);
} finally {
  await browserProcess.close().catch(() => {});
}
process.stdout.write(`RESULT ${JSON.stringify({ ok, error, results, problems })}\n`);
