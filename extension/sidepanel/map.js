// The semantic map: deck.gl ScatterplotLayer in an orthographic view (bundled locally; deck.gl needs no eval, so
// it runs under MV3's CSP). Zoom and pan with the mouse, hover shows the thumbnail, click opens the drawer, cluster
// labels sit at their centroids (click one to filter the grid to its cluster). A lasso (the Lasso button, or
// Shift+drag) selects the points it encloses.

import { Deck, OrthographicView } from '@deck.gl/core';
import { ScatterplotLayer, TextLayer } from '@deck.gl/layers';

import { $, el } from '../lib/dom.js';
import { imageName } from './drawer.js';
import { MapLasso } from './map-lasso.js';
import { decodeMap, labelPlacements, pointAttributes, pointsInPolygon, withoutOverlaps } from './map-payload.js';

const POINT_RADIUS_PX = 4; // visible at a glance on a 400 px wide panel, small enough for dense clusters
const RELAYOUT_POLL_MS = 1000; // a refit takes seconds to minutes; once a second is live enough for a status line
const FIT_MARGIN = 0.9; // leave a border around the points when fitting the view
const LABEL_PX = 13; // cluster label size, the panel's body text size
const LABEL_FONT = 'system-ui, sans-serif'; // the panel's font: its widths are what the overlap check measures
const LABEL_WEIGHT = 600;
const LABEL_PAD = [5, 2]; // background padding around the text, px: the whole box is the click target
const LABEL_GAP_PX = 4; // least space between two labels' boxes; deck's glyph layout differs slightly from measureText
const TOOLTIP_PROMPT_CHARS = 80; // the start of the prompt: enough to recognise an image
const HIT_RADIUS_PX = 7; // search hits drawn bigger (and white-ringed) than the other points
const SELECTED_RING_PX = 7; // selected points: an amber ring drawn over the point, unlike the hits' white one
const SELECTED_COLOR = [255, 196, 0, 255];

export class MapView {
  constructor(container, { getDaemon, thumbs, onOpen, onLasso = null, onCluster = null }) {
    this.container = container;
    this.getDaemon = getDaemon;
    this.thumbs = thumbs;
    this.onOpen = onOpen;
    this.onLasso = onLasso; // (ids, {add}) once a lasso is drawn; `add`: Ctrl/Cmd (or Shift in lasso mode) held
    this.onCluster = onCluster; // ({cluster, label}) when a cluster label is clicked
    this.deck = null;
    this.cache = new Map(); // album -> {etag, data}: the payload is re-sent only when the ETag changes
    this.album = null;
    this.filters = {};
    this.data = null;
    this.hits = new Set(); // ids of the current search's results, highlighted on the map
    this.records = new Map(); // id -> {name, prompt} for the tooltip, fetched on first hover
    this.viewState = null;
    this.selected = new Set(); // ids the panel has selected, ringed on the map
    this.selection = null; // {data, selected, indices}: the selected points' rows, kept until either changes
    this.lassoMode = false; // the Lasso button is pressed: every drag draws a lasso instead of panning
    this.measureText = textMeasurer();
    $('#map-relayout').addEventListener('click', () => this.relayout());
    $('#map-reset').addEventListener('click', () => this.resetView());
    $('#map-clusters').addEventListener('change', (event) => this.pickCluster(event.target));
    $('#map-lasso').addEventListener('click', () => this.setLassoMode(!this.lassoMode));
    this.lasso = new MapLasso(container, {
      isReady: () => Boolean(this.deck && this.data),
      isLassoMode: () => this.lassoMode,
      onStart: () => ($('#map-tooltip').hidden = true),
      onClick: ([x, y]) => this.picked(this.deck.pickObject({ x, y, radius: 2 })),
      onLasso: (path, add) => {
        const ids = this.idsInside(path);
        this.container.dataset.lassoed = String(ids.length);
        if (this.onLasso) this.onLasso(ids, { add });
      },
    });
  }

  /** Ring these ids (the panel's selection); an empty list rings nothing. */
  showSelection(ids) {
    this.selected = new Set((ids || []).map(Number));
    this.container.dataset.selected = String(this.selected.size);
    if (this.deck && this.data) this.deck.setProps({ layers: this.layers(this.data) });
  }

  setLassoMode(on) {
    this.lassoMode = on;
    $('#map-lasso').setAttribute('aria-pressed', String(on));
    if (!on) this.lasso.cancel();
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
    this.showWhole(this.data);
    this.deck.setProps({ layers: this.layers(this.data) });
    $('#map-tooltip').hidden = true;
  }

  /** Fit the view to the whole of `data`. deck applies an initialViewState only when it differs (deeply) from the
   * last one it got, and after a pan the last one is still the same fit: hand it the current view first. */
  showWhole(data) {
    const fit = this.initialViewState(data);
    if (this.viewState) this.deck.setProps({ initialViewState: { ...this.viewState } });
    this.viewState = fit;
    this.deck.setProps({ initialViewState: { ...fit } });
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
    $('#map-lasso').disabled = true;
    this.listClusters([]);
    this.setLassoMode(false);
  }

  /**
   * The cluster list beside the map's buttons: every label (biggest first, merged ones once) as a choice, so the
   * keyboard reaches what the canvas labels offer a pointer, including labels hidden at this zoom.
   */
  listClusters(labels) {
    const select = $('#map-clusters');
    this.clusterChoices = labels;
    select.replaceChildren(
      el('option', { value: '', text: `Clusters (${labels.length})` }),
      ...labels.map((label, i) => el('option', { value: String(i), text: `${label.text} (${label.total.toLocaleString()})` })),
    );
    select.hidden = labels.length === 0;
  }

  pickCluster(select) {
    const label = this.clusterChoices && this.clusterChoices[Number(select.value)];
    select.value = ''; // a choice, not a state: the grid's chip shows what is filtered
    if (label) this.showCluster(label);
  }

  /** The grid, filtered to a label's clusters (one label drawn for several stands for all of them). */
  showCluster({ members, label }) {
    const cluster = members.length > 1 ? members : members[0];
    this.container.dataset.cluster = String(cluster);
    if (this.onCluster) this.onCluster({ cluster, label });
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
    data.labels = labelPlacements(header.clusters, header.bounds); // once per payload: every redraw filters these
    this.data = data;
    $('#map-empty').hidden = true;
    $('#map-relayout').disabled = false;
    $('#map-reset').disabled = false;
    $('#map-lasso').disabled = false;
    this.listClusters(data.labels);
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
    const hits = this.hits;
    const isHit = (i) => hits.size > 0 && hits.has(Number(data.ids[i]));
    const points = new ScatterplotLayer({
      id: 'points',
      data: this.pointData(data),
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
    const selection = new ScatterplotLayer({
      id: 'selection',
      data: this.selectedRows(data),
      getPosition: (i) => [data.x[i], data.y[i]],
      radiusUnits: 'pixels',
      getRadius: SELECTED_RING_PX,
      filled: false,
      stroked: true,
      lineWidthUnits: 'pixels',
      getLineWidth: 2,
      getLineColor: SELECTED_COLOR,
    });
    const labels = new TextLayer({
      id: 'labels',
      data: this.visibleLabels(data),
      getPosition: (c) => [c.x, c.y],
      getText: (c) => c.text,
      getTextAnchor: (c) => c.anchor,
      getPixelOffset: (c) => c.offset,
      getSize: LABEL_PX,
      getColor: [240, 242, 248, 255],
      fontFamily: LABEL_FONT,
      fontWeight: LABEL_WEIGHT,
      outlineWidth: 2,
      outlineColor: [0, 0, 0, 255],
      fontSettings: { sdf: true },
      characterSet: 'auto',
      // a chip behind each label (the panel's colours): readable over any point, looks clickable, and the whole
      // box is the click target
      background: true,
      getBackgroundColor: [31, 34, 41, 220],
      getBorderColor: [51, 56, 69, 255],
      getBorderWidth: 1,
      backgroundPadding: LABEL_PAD,
      backgroundBorderRadius: 3,
      pickable: true,
    });
    return [points, selection, labels];
  }

  /** Positions and colours depend on the payload only: built once per payload, not on every redraw. */
  pointData(data) {
    if (this.pointDataFor !== data) {
      const { positions, colors } = pointAttributes(data);
      this.pointDataFor = data;
      this.pointBuffers = {
        length: data.x.length,
        attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: colors, size: 4 } },
      };
    }
    return this.pointBuffers;
  }

  /** Rows of the payload whose ids are selected (kept: the layer's data must not change on every redraw). */
  selectedRows(data) {
    const cached = this.selection;
    if (cached && cached.data === data && cached.selected === this.selected) return cached.indices;
    const indices = [];
    if (this.selected.size) data.ids.forEach((id, i) => this.selected.has(Number(id)) && indices.push(i));
    this.selection = { data, selected: this.selected, indices };
    return indices;
  }

  /** Distinct labels, kept inside the map, none on top of a bigger cluster's label at the current zoom. */
  visibleLabels(data) {
    const placed = data.labels;
    const view = this.viewState || this.initialViewState(data);
    const scale = 2 ** view.zoom;
    const [cx, cy] = view.target;
    const width = this.container.clientWidth || 300;
    const height = this.container.clientHeight || 300;
    const labels = withoutOverlaps(placed, ([x, y]) => [width / 2 + (x - cx) * scale, height / 2 + (y - cy) * scale], {
      measure: (text) => this.measureText(text) + 2 * LABEL_PAD[0],
      heightPx: LABEL_PX + 2 * LABEL_PAD[1] + 2,
      gapPx: LABEL_GAP_PX,
      width,
      height,
    });
    this.container.dataset.labels = String(labels.length);
    return labels;
  }

  render(data) {
    const props = {
      onHover: (info) => this.hover(info),
      // a hover tooltip belongs to where the pointer was: zooming or panning hides it; labels are re-placed
      onViewStateChange: ({ viewState }) => {
        this.viewState = viewState;
        $('#map-tooltip').hidden = true;
        this.relabel();
      },
      onClick: (info) => this.picked(info),
    };
    if (!this.deck) {
      this.viewState = this.initialViewState(data);
      this.deck = new Deck({
        parent: this.container,
        views: new OrthographicView({ id: 'map', flipY: true }),
        controller: true,
        // keeps the last frame readable (screenshots, the browser test's pixel check) at a small cost
        glOptions: { preserveDrawingBuffer: true },
        deviceProps: { webgl: { preserveDrawingBuffer: true } },
        getCursor: ({ isHovering }) => (isHovering ? 'pointer' : this.lassoMode ? 'crosshair' : 'grab'),
        // a frame counter other code (and the browser test) can wait on instead of guessing a delay
        onAfterRender: () => {
          this.container.dataset.frames = String(Number(this.container.dataset.frames || 0) + 1);
        },
        ...props,
        initialViewState: { ...this.viewState },
      });
    } else {
      this.deck.setProps(props);
      this.showWhole(data); // a new payload is shown whole
    }
    this.deck.setProps({ layers: this.layers(data) });
  }

  /** A click on a point opens it; on a cluster label, the panel filters the grid to that cluster. */
  picked(info) {
    if (!info || !info.layer || !this.data) return;
    if (info.layer.id === 'points' && info.index >= 0) this.onOpen(Number(this.data.ids[info.index]));
    else if (info.layer.id === 'labels' && info.object) {
      this.showCluster(info.object);
    }
  }

  /** Ids of the points inside a screen-space path, each point projected with deck's current viewport. */
  idsInside(path) {
    const viewport = this.deck.getViewports()[0];
    const { x, y, ids } = this.data;
    const screen = new Float32Array(x.length * 2);
    for (let i = 0; i < x.length; i += 1) {
      const [sx, sy] = viewport.project([x[i], y[i]]);
      screen[2 * i] = sx;
      screen[2 * i + 1] = sy;
    }
    return pointsInPolygon(screen, path).map((i) => Number(ids[i]));
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
        name: imageName(record, `image ${id}`),
        prompt: ((record.metadata && record.metadata.positive_prompt) || '').slice(0, TOOLTIP_PROMPT_CHARS),
      })));
    }
    return this.records.get(key);
  }
}

/** Width in pixels of a label in the label font (canvas measureText, cached per text). */
function textMeasurer() {
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${LABEL_WEIGHT} ${LABEL_PX}px ${LABEL_FONT}`;
  const widths = new Map();
  return (text) => {
    if (!widths.has(text)) widths.set(text, context.measureText(text).width);
    return widths.get(text);
  };
}
