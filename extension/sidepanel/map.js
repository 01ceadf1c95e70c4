// The semantic map: deck.gl ScatterplotLayer in an orthographic view (bundled locally; deck.gl needs no eval, so
// it runs under MV3's CSP). Zoom and pan with the mouse, hover shows the thumbnail, click opens the drawer, cluster
// labels sit at their centroids.

import { Deck, OrthographicView } from '@deck.gl/core';
import { ScatterplotLayer, TextLayer } from '@deck.gl/layers';

import { $, el } from '../lib/dom.js';
import { decodeMap, labelPlacements, pointAttributes, withoutOverlaps } from './map-payload.js';

const POINT_RADIUS_PX = 4; // visible at a glance on a 400 px wide panel, small enough for dense clusters
const RELAYOUT_POLL_MS = 1000; // a refit takes seconds to minutes; once a second is live enough for a status line
const FIT_MARGIN = 0.9; // leave a border around the points when fitting the view
const LABEL_PX = 13; // cluster label size; about 7 px per character in the panel's font
const TOOLTIP_PROMPT_CHARS = 80; // the start of the prompt: enough to recognise an image
const HIT_RADIUS_PX = 7; // search hits drawn bigger (and white-ringed) than the other points

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
    this.hits = new Set(); // ids of the current search's results, highlighted on the map
    this.records = new Map(); // id -> {name, prompt} for the tooltip, fetched on first hover
    this.viewState = null;
    $('#map-relayout').addEventListener('click', () => this.relayout());
    $('#map-reset').addEventListener('click', () => this.resetView());
  }

  /** Highlight these ids (the grid's current results); an empty list highlights nothing. */
  highlight(ids) {
    this.hits = new Set((ids || []).map(Number));
    this.container.dataset.highlighted = String(this.hits.size);
    if (this.deck && this.data) this.deck.setProps({ layers: this.layers(this.data) });
  }

  /** Back to the whole map (Re-layout recomputes the layout; this only moves the view). */
  resetView() {
    if (!this.deck || !this.data) return;
    this.viewState = this.initialViewState(this.data);
    this.deck.setProps({ initialViewState: { ...this.viewState } });
    this.deck.setProps({ layers: this.layers(this.data) });
    $('#map-tooltip').hidden = true;
  }

  /** Nothing to draw (no album, nothing indexed): the points go, `message` says what to do, Re-layout is off. */
  clear(message, album = null) {
    this.album = album;
    this.data = null;
    if (this.deck) this.deck.setProps({ layers: [] });
    $('#map-tooltip').hidden = true;
    $('#map-empty').hidden = false;
    $('#map-empty-text').textContent = message;
    $('#map-status').textContent = '';
    $('#map-relayout').disabled = true;
    $('#map-reset').disabled = true;
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
      if (album !== this.album) return;
      if (err.code === 'not_indexed') this.clear('No map yet: this album has not been indexed. Press Update Index in Albums.', album);
      else status.textContent = err.message;
      return;
    }
    if (album !== this.album) return;
    const { header } = data;
    if (header.count === 0 && !Object.keys(filters).length) {
      this.clear('No map yet: the album has no indexed images. Press Update Index in Albums.', album);
      return;
    }
    this.data = data;
    $('#map-empty').hidden = true;
    $('#map-relayout').disabled = false;
    $('#map-reset').disabled = false;
    this.container.dataset.frames = '0';
    status.textContent =
      header.count === 0
        ? 'No images match the search filters.'
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
      button.disabled = !this.data;
    }
  }

  relabel() {
    if (!this.deck || !this.data || this.relabelPending) return;
    this.relabelPending = true;
    requestAnimationFrame(() => {
      this.relabelPending = false;
      if (this.deck && this.data) this.deck.setProps({ layers: this.layers(this.data) });
    });
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
    const hits = this.hits;
    const isHit = (i) => hits.size > 0 && hits.has(Number(data.ids[i]));
    const points = new ScatterplotLayer({
      id: 'points',
      data: {
        length: data.x.length,
        attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: colors, size: 4 } },
      },
      radiusUnits: 'pixels',
      getRadius: (_, { index }) => (isHit(index) ? HIT_RADIUS_PX : POINT_RADIUS_PX),
      stroked: hits.size > 0,
      lineWidthUnits: 'pixels',
      getLineWidth: (_, { index }) => (isHit(index) ? 2 : 0),
      getLineColor: [255, 255, 255, 255],
      updateTriggers: { getRadius: [hits], getLineWidth: [hits] },
      pickable: true,
      autoHighlight: true,
      highlightColor: [255, 255, 255, 255],
    });
    const labels = new TextLayer({
      id: 'labels',
      data: this.visibleLabels(data),
      getPosition: (c) => [c.x, c.y],
      getText: (c) => c.label,
      getTextAnchor: (c) => c.anchor,
      getSize: LABEL_PX,
      getColor: [240, 242, 248, 255],
      outlineWidth: 2,
      outlineColor: [0, 0, 0, 255],
      fontSettings: { sdf: true },
      characterSet: 'auto',
    });
    return [points, labels];
  }

  /** Distinct labels, kept inside the map, none on top of a bigger cluster's label at the current zoom. */
  visibleLabels(data) {
    const placed = labelPlacements(data.header.clusters, data.header.bounds);
    const view = this.viewState || this.initialViewState(data);
    const scale = 2 ** view.zoom;
    const [cx, cy] = view.target;
    const width = this.container.clientWidth || 300;
    const height = this.container.clientHeight || 300;
    return withoutOverlaps(placed, ([x, y]) => [width / 2 + (x - cx) * scale, height / 2 + (y - cy) * scale]);
  }

  render(data) {
    this.viewState = this.initialViewState(data); // a new payload is shown whole
    const props = {
      layers: this.layers(data),
      initialViewState: this.initialViewState(data),
      onHover: (info) => this.hover(info),
      // a hover tooltip belongs to where the pointer was: zooming or panning hides it; labels are re-placed
      onViewStateChange: ({ viewState }) => {
        this.viewState = viewState;
        $('#map-tooltip').hidden = true;
        this.relabel();
      },
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
    const caption = tooltip.querySelector('span');
    caption.textContent = '';
    this.describe(id)
      .then((about) => {
        if (tooltip.dataset.id !== String(id)) return;
        caption.replaceChildren(el('b', { text: about.name }), about.prompt ? el('span', { class: 'prompt', text: about.prompt }) : '');
      })
      .catch(() => {});
    const img = tooltip.querySelector('img');
    this.thumbs
      .get(this.album, id)
      .then((url) => tooltip.dataset.id === String(id) && (img.src = url))
      .catch(() => {});
  }

  /** File name and prompt start for the tooltip (one GET per image, kept per album). */
  async describe(id) {
    const key = `${this.album}/${id}`;
    if (!this.records.has(key)) {
      const album = this.album;
      this.records.set(key, this.getDaemon().get(`/images/${encodeURIComponent(album)}/${id}`).then((record) => ({
        name: (record.path || '').split(/[\\/]/).pop() || `image ${id}`,
        prompt: ((record.metadata && record.metadata.positive_prompt) || '').slice(0, TOOLTIP_PROMPT_CHARS),
      })));
    }
    return this.records.get(key);
  }
}
