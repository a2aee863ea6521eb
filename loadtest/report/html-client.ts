/**
 * What the HTML report runs and looks like in the browser: the page's CSS
 * and the client script that draws every `ChartSpec` of the embedded JSON
 * (`<script type="application/json" id="arena-data">`, shape `ClientData`)
 * with uPlot (the global `uPlot` of uPlot.iife.min.js, inlined before it).
 *
 * The script, for each chart: one uPlot plot in `#plot-<id>` with the
 * shared x range, `cursor.sync` (key "arena": hovering one chart moves the
 * cursor on all), a draw hook that shades the phases under the lines, and
 * one that draws `limit` as a horizontal dashed line. When every chart has
 * drawn once it sets `data-charts-drawn="<count>"` on <body> (tests wait for
 * it). Plain ES2017, no network access.
 *
 * Charts whose x is not time (the bench's concurrency axis, bench-html.ts)
 * use the optional fields of `XChartSpec`/`XChartSeries`: their own x label,
 * unit and range, a log y scale, a vertical marker, and series drawn as
 * points only or as points joined by a line. The report's time charts set
 * none of them and draw as before.
 */
import type { ChartSeries, ChartSpec, Phase } from './html-types.js';

/** Fill colours of the shaded phases (also the legend swatches). */
export const PHASE_FILL: Record<Phase, string> = {
  'ramp-up': 'rgba(255, 179, 0, 0.16)',
  steady: 'rgba(76, 175, 80, 0.07)',
  'ramp-down': 'rgba(30, 136, 229, 0.14)',
};

/** Line colours for series without their own, by position. */
export const PALETTE = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#6d4c41', '#ad1457'];

/** The colour of a chart's limit line. */
export const LIMIT_COLOR = '#b71c1c';

/** A series with the optional drawing modes of a non-time chart (see the file comment). */
export interface XChartSeries extends ChartSeries {
  /** Points (8 px) and no line: measurements at a few x. */
  pointsOnly?: boolean;
  /** Points (6 px) on the line: a line through a few measurements. */
  showPoints?: boolean;
  /** Join the line over nulls (x values other series added); default false (a null is a gap). */
  spanGaps?: boolean;
}

/** A chart whose x is not seconds since the start (pass `phases: []`); every added field is optional. */
export interface XChartSpec extends ChartSpec {
  series: XChartSeries[];
  /** What the x axis measures, e.g. "concurrency"; default "seconds since the start". */
  xLabel?: string;
  /** The x unit, e.g. "in flight"; shown with the label and in the legend. */
  xUnit?: string;
  /** This chart's x range instead of the page's `xRange`. */
  xRange?: [number, number];
  /** A logarithmic y scale (base 10; every value must be > 0 or null). */
  yLog?: boolean;
  /** A vertical dashed line at this x with a label (e.g. the plan's target concurrency). */
  xMarker?: { value: number; label: string };
}

/** The JSON the page embeds for the script. */
export interface ClientData {
  /** The x range of every chart, seconds since the start. */
  xRange: [number, number];
  phaseFill: Record<Phase, string>;
  palette: string[];
  limitColor: string;
  charts: ChartSpec[];
}

/** The client script (see the file comment). */
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('arena-data').textContent);
  var total = data.charts.length;
  var drawn = {};
  var count = 0;

  function markDrawn(id) {
    if (drawn[id]) return;
    drawn[id] = true;
    count++;
    if (count === total) document.body.setAttribute('data-charts-drawn', String(total));
  }

  function shadePhases(spec) {
    return function (u) {
      var ctx = u.ctx;
      var top = u.bbox.top;
      var height = u.bbox.height;
      var left = u.bbox.left;
      var right = u.bbox.left + u.bbox.width;
      ctx.save();
      spec.phases.forEach(function (p) {
        var x0 = Math.max(left, u.valToPos(p.from, 'x', true));
        var x1 = Math.min(right, u.valToPos(p.to, 'x', true));
        if (x1 <= x0) return;
        ctx.fillStyle = data.phaseFill[p.phase] || 'rgba(0,0,0,0.04)';
        ctx.fillRect(x0, top, x1 - x0, height);
      });
      ctx.restore();
    };
  }

  function drawLimit(spec) {
    return function (u) {
      if (spec.limit === undefined || spec.limit === null) return;
      var ctx = u.ctx;
      var y = Math.round(u.valToPos(spec.limit, 'y', true)) + 0.5;
      ctx.save();
      ctx.strokeStyle = data.limitColor;
      ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
      ctx.setLineDash([8, 6]);
      ctx.beginPath();
      ctx.moveTo(u.bbox.left, y);
      ctx.lineTo(u.bbox.left + u.bbox.width, y);
      ctx.stroke();
      ctx.restore();
    };
  }

  function drawXMarker(spec) {
    return function (u) {
      if (!spec.xMarker) return;
      var ctx = u.ctx;
      var px = window.devicePixelRatio || 1;
      var x = Math.round(u.valToPos(spec.xMarker.value, 'x', true)) + 0.5;
      ctx.save();
      ctx.strokeStyle = '#59636e';
      ctx.fillStyle = '#59636e';
      ctx.lineWidth = 1.5 * px;
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.font = 12 * px + 'px sans-serif';
      ctx.textAlign = 'right';
      ctx.textBaseline = 'top';
      ctx.fillText(spec.xMarker.label, x - 4 * px, u.bbox.top + 4 * px);
      ctx.restore();
    };
  }

  function yRange(spec) {
    if (spec.yLog)
      return function (u, min, max) {
        var lo = min > 0 && isFinite(min) ? min : 1;
        var hi = max > 0 && isFinite(max) ? max : 10;
        if (spec.limit !== undefined && spec.limit !== null && spec.limit > 0) {
          lo = Math.min(lo, spec.limit);
          hi = Math.max(hi, spec.limit);
        }
        return uPlot.rangeLog(lo, hi, 10, true);
      };
    return function (u, min, max) {
      var hi = max === null || max === undefined || !isFinite(max) ? 0 : max;
      if (spec.limit !== undefined && spec.limit !== null) hi = Math.max(hi, spec.limit);
      return [0, hi > 0 ? hi * 1.1 : 1];
    };
  }

  function valueOf(spec) {
    return function (u, v) {
      if (v === null || v === undefined) return '-';
      var d = Math.abs(v) < 10 ? 2 : Math.abs(v) < 1000 ? 1 : 0;
      return v.toFixed(d) + ' ' + spec.unit;
    };
  }

  function draw(spec) {
    var el = document.getElementById('plot-' + spec.id);
    if (!el) throw new Error('no element for chart ' + spec.id);
    var xUnit = spec.xLabel ? spec.xUnit || '' : 's';
    var series = [{ label: spec.xLabel || 'time', value: function (u, v) { return v === null || v === undefined ? '-' : v.toFixed(spec.xLabel ? 0 : 1) + (xUnit ? ' ' + xUnit : ''); } }];
    var columns = [spec.x];
    spec.series.forEach(function (s, i) {
      var line = {
        label: s.label,
        stroke: s.color || data.palette[i % data.palette.length],
        width: 2,
        spanGaps: false,
        value: valueOf(spec),
        points: { show: spec.x.length < 3 }
      };
      if (s.dash) line.dash = s.dash;
      if (s.spanGaps) line.spanGaps = true;
      if (s.showPoints) line.points = { show: true, size: 6, fill: line.stroke };
      if (s.pointsOnly) {
        line.paths = function () { return null; };
        line.points = { show: true, size: 8, fill: line.stroke };
      }
      series.push(line);
      columns.push(s.values);
    });
    var opts = {
      width: Math.max(320, el.clientWidth || 900),
      height: 240,
      cursor: { sync: { key: 'arena' } },
      scales: {
        x: { time: false, range: function () { var r = spec.xRange || data.xRange; return [r[0], r[1]]; } },
        y: spec.yLog ? { distr: 3, log: 10, range: yRange(spec) } : { range: yRange(spec) }
      },
      axes: [
        { label: spec.xLabel ? spec.xLabel + (spec.xUnit ? ' (' + spec.xUnit + ')' : '') : 'seconds since the start' },
        { label: spec.yLabel + ' (' + spec.unit + ')', size: 64 }
      ],
      series: series,
      hooks: {
        drawClear: [shadePhases(spec)],
        draw: [drawLimit(spec), drawXMarker(spec), function () { markDrawn(spec.id); }]
      }
    };
    return new uPlot(opts, columns, el);
  }

  if (total === 0) document.body.setAttribute('data-charts-drawn', '0');
  data.charts.forEach(draw);
})();
`;

/** The page's own CSS (uPlot's is inlined before it). */
export const REPORT_CSS = `
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Liberation Sans", Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
code { font: 12.5px/1.3 ui-monospace, "Liberation Mono", Menlo, monospace; background: var(--bg-soft); padding: 1px 4px; border-radius: 4px; }
.note { color: var(--muted); margin: 4px 0 8px; }
.badges { margin: 6px 0 10px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; border: 1px solid; }
.badge.ok { color: var(--ok); border-color: var(--ok); background: #dafbe1; }
.badge.bad { color: var(--bad); border-color: var(--bad); background: #ffebe9; }
.badge.warn { color: var(--warn); border-color: var(--warn); background: #fff8c5; }
.badge.none { color: var(--muted); border-color: var(--line); background: var(--bg-soft); }
.callout { padding: 10px 14px; border-radius: 6px; margin: 10px 0; border: 1px solid; }
.callout.warning { background: #fff8c5; border-color: #d4a72c; font-size: 15px; }
.callout.info { background: #ddf4ff; border-color: #54aeff; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--bg-soft); font-weight: 600; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total th, tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
tr.fail td, tr.missing td { background: #fff5f5; }
tr.first th { color: var(--bad); }
td.reason { font-family: ui-monospace, "Liberation Mono", Menlo, monospace; }
.scroll { overflow-x: auto; }
table.summary { font-size: 13px; }
table.summary th, table.summary td { padding: 4px 6px; }
table.summary thead th { white-space: normal; vertical-align: bottom; }
figure.chart { margin: 14px 0 22px; }
figure.chart h3 { font-size: 14px; margin: 0 0 4px; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
.swatch { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 10px; border: 1px solid rgba(0,0,0,0.35); vertical-align: middle; }
.limit-swatch { display: inline-block; width: 22px; margin: 0 4px 0 10px; border-top: 2px dashed; vertical-align: middle; }
ul.warnings { color: var(--warn); }
thead th.group { text-align: center; }
table.model { font-size: 13px; }
table.model th, table.model td { padding: 4px 7px; }
tr.differs th, tr.differs td { background: #fff5f5; }
tr.has-differences th, tr.has-differences td { border-bottom: none; }
tr.difference-lines td { padding-top: 0; }
ul.differences { margin: 0; padding-left: 18px; color: var(--bad); font-size: 12.5px; }
.sub { color: var(--muted); font-size: 12px; }
h3 { font-size: 15px; margin: 16px 0 4px; }
details { margin: 6px 0; color: var(--muted); }
footer { color: var(--muted); margin-top: 32px; font-size: 12px; }
`;
