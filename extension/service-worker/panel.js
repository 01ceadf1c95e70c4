// Where the side panel opens: beside any tab from the toolbar button, and enabled for tabs on the configured
// InvokeAI URL so a click there opens it next to InvokeAI.

/* global __BROWSER__ */ // defined by build.mjs: the other browser's code drops out of each bundle
import { LOCAL } from '../lib/messages.js';

export const PANEL_PATH = 'sidepanel/sidepanel.html';

/** Does `tabUrl` belong to the InvokeAI server at `invokeaiUrl` (same origin, under its path prefix)? */
export function isInvokeAITab(tabUrl, invokeaiUrl) {
  if (!tabUrl || !invokeaiUrl) return false;
  let tab;
  let base;
  try {
    tab = new URL(tabUrl);
    base = new URL(invokeaiUrl);
  } catch {
    return false;
  }
  if (!/^https?:$/.test(base.protocol) || tab.origin !== base.origin) return false;
  const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  return `${tab.pathname}/`.startsWith(prefix) || tab.pathname === base.pathname;
}

export async function configurePanelForTab(tabId, tabUrl) {
  if (__BROWSER__ !== 'chrome') return; // Firefox: the sidebar is always available from its own button
  const { [LOCAL.INVOKEAI_URL]: invokeaiUrl } = await chrome.storage.local.get(LOCAL.INVOKEAI_URL);
  if (isInvokeAITab(tabUrl, invokeaiUrl)) {
    await chrome.sidePanel.setOptions({ tabId, path: PANEL_PATH, enabled: true });
  }
}

export async function configureAllTabs() {
  const tabs = await chrome.tabs.query({});
  await Promise.all(tabs.map((tab) => configurePanelForTab(tab.id, tab.url).catch(() => {})));
}
