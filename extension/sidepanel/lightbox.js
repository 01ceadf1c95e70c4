// Full-size view of the drawer's image: fits the panel, click (or Z) toggles 100 % zoom, ←/→ walk the current
// results (through the drawer, so its fields follow), Esc closes the lightbox only.

import { $ } from '../lib/dom.js';
import { imageName } from './drawer.js';

export class Lightbox {
  /** @param {import('./drawer.js').Drawer} drawer  @param {(delta: number) => void} onStep */
  constructor(drawer, onStep) {
    this.node = $('#lightbox');
    this.img = $('#lightbox-image');
    this.caption = $('#lightbox-caption');
    drawer.onFullImage = (url, record) => this.node.hidden || this.show(url, record);
    $('#drawer-image').addEventListener('click', async () => {
      const url = drawer.fullUrl ? await drawer.fullUrl : null;
      this.show(url || $('#drawer-image').src, drawer.current && drawer.current.record);
    });
    $('#lightbox-close').addEventListener('click', () => this.close());
    this.img.addEventListener('click', () => this.zoom());
    // capture: the lightbox sees keys before the drawer and the grid, and marks those it used
    document.addEventListener('keydown', (event) => {
      if (this.node.hidden) return;
      if (event.key === 'Escape') this.close();
      else if (event.key === 'ArrowRight') onStep(1);
      else if (event.key === 'ArrowLeft') onStep(-1);
      else if (event.key === 'z' || event.key === 'Z') this.zoom();
      else return;
      event.preventDefault();
    }, true);
  }

  show(url, record) {
    if (!url) return;
    this.node.hidden = false;
    this.img.src = url;
    this.node.classList.remove('zoomed');
    const name = imageName(record);
    const size = record && record.width ? ` · ${record.width} × ${record.height}` : '';
    this.caption.textContent = `${name}${size} — click to zoom, ←/→ for the next, Esc to close`;
    $('#lightbox-close').focus();
  }

  zoom() {
    this.node.classList.toggle('zoomed');
  }

  close() {
    this.node.hidden = true;
    this.img.removeAttribute('src');
  }
}
