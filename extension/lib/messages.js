// Names shared by the service worker and the panel: message types, storage keys, menu ids, connection states.
// One place, so a typo is an import error rather than a message nobody answers.

export const NATIVE_HOST = 'com.photomap.daemon';

// chrome.runtime messages (panel -> service worker). Every message is {type, ...}.
export const MSG = Object.freeze({
  CONNECT: 'photomap/connect', // {refresh?: boolean} -> connection record
});

// chrome.storage keys. Session storage holds what must not outlive the browser (port, token); local holds choices.
export const SESSION = Object.freeze({
  CONNECTION: 'connection', // {state, port?, token?, version?, message?, command?, attempt?}
  LAST_REF_IMAGE: 'lastRefImage', // {ok, message, board_name?, at}
});
export const LOCAL = Object.freeze({
  ALBUM: 'album', // the album key picked in the panel
  INVOKEAI_URL: 'invokeaiUrl', // copy of the daemon's setting, so the worker can match tabs without a request
  VIEW: 'view', // last panel tab: grid | map | albums | settings
});

export const MENU = Object.freeze({ REF_IMAGE: 'photomap-ref-image' });

export const CONNECTION = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  NOT_INSTALLED: 'not_installed', // no native host manifest: the daemon was never installed for this browser
  NOT_RUNNING: 'not_running', // the host answered (or failed) but no daemon could be reached
});

// The one command that fixes each broken state, shown verbatim in the panel.
export const FIX_COMMAND = Object.freeze({
  [CONNECTION.NOT_INSTALLED]: 'photomapd install',
  [CONNECTION.NOT_RUNNING]: 'photomapd serve',
});
