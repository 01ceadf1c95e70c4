// The map's lasso: a freehand path drawn over the map (the Lasso button, or Shift+drag) whose enclosed points become
// the selection. Its listeners run in the capture phase, before deck.gl's (on its canvas) see the event: a drag that
// draws a lasso never reaches deck's controller, so the view does not pan under it. Esc cancels a lasso in progress.

import { $ } from '../lib/dom.js';
import { isLasso, lassoPath } from './map-payload.js';

const LASSO_STEP_PX = 3; // a freehand path keeps a point only this far from the last one: small paths, same shape

/** Ctrl/Cmd adds a lasso to the selection; in lasso mode Shift does too (outside it Shift is what starts a lasso). */
export function addsToSelection(event, lassoMode) {
  return event.ctrlKey || event.metaKey || (lassoMode && event.shiftKey);
}

export class MapLasso {
  /**
   * @param {HTMLElement} container  the map (deck's canvas fills it; #map-lasso-overlay is the SVG drawn on)
   * @param {{isReady: () => boolean, isLassoMode: () => boolean, onStart: () => void,
   *   onClick: (point: number[]) => void, onLasso: (path: number[][], add: boolean) => void}} hooks
   *   onClick: a press that wobbled less than a lasso (deck never saw it); onLasso: the path, in the map's pixels
   */
  constructor(container, hooks) {
    this.container = container;
    this.hooks = hooks;
    this.current = null; // the lasso being drawn: {pointerId, path, add, cancelled}
    const options = { capture: true };
    container.addEventListener('pointerdown', (event) => this.start(event), options);
    container.addEventListener('pointermove', (event) => this.move(event), options);
    container.addEventListener('pointerup', (event) => this.end(event), options);
    container.addEventListener('pointercancel', (event) => this.end(event, true), options);
    // before the drawer or the grid take Esc for themselves
    window.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !this.current || this.current.cancelled) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      this.cancel();
    }, options);
  }

  start(event) {
    if (event.button !== 0 || !this.hooks.isReady() || this.current) return;
    const lassoMode = this.hooks.isLassoMode();
    if (!lassoMode && !event.shiftKey) return;
    event.stopPropagation();
    event.preventDefault();
    this.container.setPointerCapture?.(event.pointerId);
    this.current = { pointerId: event.pointerId, path: [this.local(event)], add: addsToSelection(event, lassoMode), cancelled: false };
    this.hooks.onStart();
  }

  move(event) {
    const lasso = this.current;
    if (!lasso || event.pointerId !== lasso.pointerId) return;
    event.stopPropagation();
    if (lasso.cancelled) return;
    const point = this.local(event);
    const last = lasso.path[lasso.path.length - 1];
    if (Math.hypot(point[0] - last[0], point[1] - last[1]) < LASSO_STEP_PX) return;
    lasso.path.push(point);
    const overlay = $('#map-lasso-overlay');
    overlay.removeAttribute('hidden'); // an SVG element has no `hidden` property, only the attribute
    overlay.querySelector('path').setAttribute('d', lassoPath(lasso.path));
  }

  end(event, cancelled = false) {
    const lasso = this.current;
    if (!lasso || event.pointerId !== lasso.pointerId) return;
    event.stopPropagation();
    this.current = null;
    this.hide();
    if (this.container.hasPointerCapture?.(event.pointerId)) this.container.releasePointerCapture(event.pointerId);
    if (cancelled || lasso.cancelled || !this.hooks.isReady()) return;
    const end = this.local(event);
    lasso.path.push(end);
    if (!isLasso(lasso.path)) this.hooks.onClick(end);
    else this.hooks.onLasso(lasso.path, lasso.add || addsToSelection(event, this.hooks.isLassoMode()));
  }

  /** Esc: the lasso drawn so far goes; the rest of the drag is swallowed until the button is released. */
  cancel() {
    if (this.current) this.current.cancelled = true;
    this.hide();
  }

  hide() {
    const overlay = $('#map-lasso-overlay');
    overlay.setAttribute('hidden', '');
    overlay.querySelector('path').setAttribute('d', '');
  }

  /** An event's position in the map's own pixels. */
  local(event) {
    const rect = this.container.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }
}
