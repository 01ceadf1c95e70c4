// "Use as Ref Image" from the context menu of any image: the daemon fetches an http(s) URL itself; data: and blob:
// images are read here (blob: only exists inside the page, so it is read in the page's frame) and sent as bytes.

import { workerDaemon } from './connection.js';
import { SESSION } from '../lib/messages.js';

const NOTIFICATION_ICON = 'icons/icon-128.png';

/** Runs in the page's frame: a blob: URL is only readable by the document that created it. */
async function readInPage(url) {
  const blob = await (await fetch(url)).blob();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error('Could not read the image'));
    reader.readAsDataURL(blob);
  });
}

async function imageBlob(info, tab) {
  let dataUrl = info.srcUrl;
  if (info.srcUrl.startsWith('blob:')) {
    const [injection] = await chrome.scripting.executeScript({
      target: { tabId: tab.id, frameIds: [info.frameId || 0] },
      func: readInPage,
      args: [info.srcUrl],
    });
    dataUrl = injection && injection.result;
    if (!dataUrl) throw new Error('Could not read the image from the page');
  }
  return (await fetch(dataUrl)).blob(); // a data: URL decodes locally; nothing leaves the machine here
}

/** Sends the clicked image to the daemon; returns and records {ok, message, board_name?}. */
export async function sendRefImage(info, tab) {
  let result;
  try {
    const daemon = await workerDaemon();
    const src = info.srcUrl || '';
    const reply = /^https?:/i.test(src)
      ? await daemon.post('/ref-image', { url: src })
      : await daemon.postBytes('/ref-image', await imageBlob(info, tab));
    const board = reply.board_name || 'Uncategorized';
    result = { ok: true, board_name: board, image_name: reply.image_name, message: `Sent to InvokeAI board "${board}"` };
  } catch (err) {
    result = { ok: false, message: (err && err.message) || String(err) };
  }
  result.at = Date.now();
  await chrome.storage.session.set({ [SESSION.LAST_REF_IMAGE]: result });
  await notify(result);
  return result;
}

async function notify(result) {
  if (!chrome.notifications) return;
  try {
    await chrome.notifications.create({
      type: 'basic',
      iconUrl: chrome.runtime.getURL(NOTIFICATION_ICON),
      title: result.ok ? 'PhotoMap: sent to InvokeAI' : 'PhotoMap: could not send the image',
      message: result.message,
    });
  } catch {
    // notifications can be disabled by the user or the OS; the result is still in session storage for the panel
  }
}
