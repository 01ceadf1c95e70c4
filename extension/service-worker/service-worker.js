// Extension service worker: listeners only, registered at the top level so a worker woken by an event finds them.
// All state is in chrome.storage (the worker is stopped whenever it idles).

import { ensureConnection } from './connection.js';
import { configureAllTabs, configurePanelForTab } from './panel.js';
import { sendRefImage } from './ref-image.js';
import { LOCAL, MENU, MSG } from '../lib/messages.js';

/* global __BROWSER__ */ // defined by build.mjs (Firefox's linter flags chrome.sidePanel even behind a check)
if (__BROWSER__ === 'chrome') {
  chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});
} else {
  // Firefox has no side panel API: the toolbar button toggles the sidebar instead (a user action, as it requires).
  chrome.action.onClicked.addListener(() => globalThis.browser.sidebarAction.toggle());
}

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({ id: MENU.REF_IMAGE, title: 'Use as Ref Image', contexts: ['image'] });
  configureAllTabs().catch(() => {});
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === MENU.REF_IMAGE) sendRefImage(info, tab);
});

chrome.tabs.onUpdated.addListener((tabId, changeInfo, tab) => {
  if (changeInfo.url || changeInfo.status === 'complete') configurePanelForTab(tabId, tab.url).catch(() => {});
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes[LOCAL.INVOKEAI_URL]) configureAllTabs().catch(() => {});
});

chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
  if (message && message.type === MSG.CONNECT) {
    ensureConnection({ refresh: Boolean(message.refresh) }).then(sendResponse);
    return true; // answer asynchronously
  }
  return false;
});

// The context menu cannot be clicked by a headless test; the browser tests call the same handler through this.
globalThis.photomap = { sendRefImage, ensureConnection };
