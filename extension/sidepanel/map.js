// The semantic map: deck.gl ScatterplotLayer in an orthographic view (bundled locally; deck.gl needs no eval, so
// it runs under MV3's CSP). Zoom and pan with the mouse, hover shows the thumbnail, click opens the drawer, cluster
// labels sit at their centroids.

import { Deck, OrthographicView } from '@deck.gl/core';
import { ScatterplotLayer, TextLayer } from '@deck.gl/layers';

import { $ } from '../lib/dom.js';
import { decodeMap, pointAttributes } from './map-payload.js';

const POINT_RADIUS_PX = 4; // visible at a glance on a 400 px wide panel, small enough for dense clusters
const RELAYOUT_POLL_MS = 1000; // a refit takes seconds to minutes; once a second is live enough for a status line
const FIT_MARGIN = 0.9; // leave a border around the points when fitting the view

export class MapView {
  constructor(container, { getDaemon, thumbs, onOpen }) {
    this.container = container;
    this.getDaemon = getDaemon;
    this.thumbs = thumbs;
    this.onOpen = onOpen;
    this.deck = null;
    this.cache = new Map(); // album -> {etag, data}: the payload is re-sent only when the ETag changes
    this.album = null;
    this.filters = {};
    this.data = null;
    $('#map-relayout').addEventListener('click', () => this.relayout());
  }

  /** Draw `album`'s map, narrowed by the search form's `filters` (the same SearchFilters the search takes). */
  async show(album, filters = {}) {
    this.album = album;
    this.filters = filters;
    const status = $('#map-status');
    status.textContent = 'Loading map…';
    let data;
    try {
      data = await this.fetch(album);
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    if (album !== this.album) return;
    this.data = data;
    this.container.dataset.frames = '0';
    const { header } = data;
    status.textContent =
      header.count === 0
        ? 'No map yet: index the album first.'
        : `${header.count.toLocaleString()} images${header.pending ? `, ${header.pending} not placed yet` : ''}`;
    this.render(data);
  }

  async fetch(album) {
    const query = new URLSearchParams(Object.entries(this.filters).map(([k, v]) => [k, String(v)])).toString();
    const path = `/albums/${encodeURIComponent(album)}/map${query ? `?${query}` : ''}`;
    const cached = this.cache.get(path);
    const headers = cached ? { 'If-None-Match': cached.etag } : {};
    const response = await this.getDaemon().request('GET', path, { headers });
    if (response.status === 304 && cached) return cached.data;
    const data = decodeMap(await response.arrayBuffer());
    const etag = response.headers.get('ETag');
    if (etag) this.cache.set(path, { etag, data });
    return data;
  }

  /** Refit the whole map on demand; new images are otherwise placed without moving the old ones. */
  async relayout() {
    const album = this.album;
    if (!album) return;
    const status = $('#map-status');
    const button = $('#map-relayout');
    const path = `/albums/${encodeURIComponent(album)}/map/relayout`;
    button.disabled = true;
    try {
      let job = await this.getDaemon().post(path, {});
      // A re-layout waits for an index run of the album to finish first ('queued').
      while (job && (job.state === 'running' || job.state === 'queued')) {
        status.textContent = job.state === 'queued' ? 'Re-layout: waiting for indexing to finish' : `Re-layout: ${job.done}/${job.total}`;
        await new Promise((resolve) => setTimeout(resolve, RELAYOUT_POLL_MS));
        job = await this.getDaemon().get(path);
      }
      if (job && job.state !== 'done') throw new Error(job.message || `Re-layout ${job.state}`);
      await this.show(album, this.filters);
      status.textContent = `${status.textContent} · layout updated`;
    } catch (err) {
      status.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  initialViewState({ header }) {
    const [minX, minY, maxX, maxY] = header.bounds || [0, 0, 1, 1];
    const width = this.container.clientWidth || 300;
    const height = this.container.clientHeight || 300;
    const span = Math.max(maxX - minX, maxY - minY, 1e-6);
    const zoom = Math.log2((FIT_MARGIN * Math.min(width, height)) / span);
    return { target: [(minX + maxX) / 2, (minY + maxY) / 2, 0], zoom, minZoom: zoom - 3, maxZoom: zoom + 10 };
  }

  layers(data) {
    const { positions, colors } = pointAttributes(data);
    const points = new ScatterplotLayer({
      id: 'points',
      data: {
        length: data.x.length,
        attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: colors, size: 4 } },
      },
      radiusUnits: 'pixels',
      getRadius: POINT_RADIUS_PX,
      pickable: true,
      autoHighlight: true,
      highlightColor: [255, 255, 255, 255],
    });
    const labels = new TextLayer({
      id: 'labels',
      data: data.header.clusters.filter((c) => c.label),
      getPosition: (c) => [c.x, c.y],
      getText: (c) => c.label,
      getSize: 13,
      getColor: [240, 242, 248, 255],
      outlineWidth: 2,
      outlineColor: [0, 0, 0, 255],
      fontSettings: { sdf: true },
      characterSet: 'auto',
    });
    return [points, labels];
  }

  render(data) {
    const props = {
      layers: this.layers(data),
      initialViewState: this.initialViewState(data),
      onHover: (info) => this.hover(info),
      onClick: (info) => info.layer?.id === 'points' && info.index >= 0 && this.onOpen(Number(data.ids[info.index])),
    };
    if (!this.deck) {
      this.deck = new Deck({
        parent: this.container,
        views: new OrthographicView({ id: 'map', flipY: true }),
        controller: true,
        // keeps the last frame readable (screenshots, the browser test's pixel check) at a small cost
        glOptions: { preserveDrawingBuffer: true },
        deviceProps: { webgl: { preserveDrawingBuffer: true } },
        getCursor: ({ isHovering }) => (isHovering ? 'pointer' : 'grab'),
        // a frame counter other code (and the browser test) can wait on instead of guessing a delay
        onAfterRender: () => {
          this.container.dataset.frames = String(Number(this.container.dataset.frames || 0) + 1);
        },
        ...props,
      });
    } else {
      this.deck.setProps(props);
    }
  }

  hover(info) {
    const tooltip = $('#map-tooltip');
    if (!info.layer || info.layer.id !== 'points' || info.index < 0 || !this.data) {
      tooltip.hidden = true;
      return;
    }
    const id = Number(this.data.ids[info.index]);
    const rect = this.container.getBoundingClientRect();
    tooltip.style.left = `${rect.left + info.x + 12}px`;
    tooltip.style.top = `${rect.top + info.y + 12}px`;
    tooltip.hidden = false;
    tooltip.dataset.id = String(id);
    tooltip.querySelector('span').textContent = `#${id}`;
    const img = tooltip.querySelector('img');
    this.thumbs
      .get(this.album, id)
      .then((url) => tooltip.dataset.id === String(id) && (img.src = url))
      .catch(() => {});
  }
}
