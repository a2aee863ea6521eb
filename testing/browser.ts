/**
 * Open an HTML report in Debian's headless Chromium (puppeteer-core, which
 * downloads no browser) as a person would, with the network cut off: a
 * proxy that goes nowhere (127.0.0.1:9) and request interception that
 * aborts, and records, every request but the file itself and data:/blob:
 * URLs. Then: wait for the charts, take a full-page screenshot, count the
 * drawn (and coloured) pixels of every <canvas>, collect console and page errors (and any
 * dialog, e.g. an injected alert), read every `[data-metric]` cell and the
 * page's visible text.
 *
 * Chromium: $ARENA_CHROMIUM, else ARENA_CHROMIUM in .tools/env.sh (written by
 * `scripts/install-debian-deps.sh chromium`), else `chromium` on the PATH.
 */
import { mkdirSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';
import { readToolsEnv } from '../loadtest/stack/tools.js';
import { REPO_ROOT } from './paths.js';
import { isExecutable } from '../lib/util.js';

/** The command that installs Chromium (named in every "Chromium missing" error). */
export const CHROMIUM_INSTALL = 'scripts/install-debian-deps.sh chromium (as root)';

/** What a page showed. */
export interface OpenedReport {
  /** Console messages of type error, uncaught page errors, and dialogs (alert/confirm/prompt) the page opened. */
  consoleErrors: string[];
  /** URLs the page tried to fetch besides itself (all aborted). */
  blockedRequests: string[];
  /**
   * Per <canvas>: the id of the chart it belongs to (`#chart-<id>`), its size in px, how many pixels differ
   * from its most common colour (its background), and how many are coloured ink: opaque (alpha >= 128) and
   * saturated (max - min of R, G, B >= 50), i.e. the data lines and limit, not the grey axes, black text,
   * grid or the translucent phase shading.
   */
  canvases: { id: string; width: number; height: number; drawnPixels: number; inkPixels: number }[];
  /** Every `[data-metric]` element: its data-scenario, data-metric and trimmed text. */
  cells: { scenario: string; metric: string; text: string }[];
  /** The page's visible text (`document.body.innerText`). */
  text: string;
}

/**
 * The Chromium executable to launch (see the file comment).
 * @throws Error naming where it looked and CHROMIUM_INSTALL when there is none.
 */
export function chromiumPath(): string {
  const name = process.env['ARENA_CHROMIUM'] ?? readToolsEnv(REPO_ROOT)['ARENA_CHROMIUM'] ?? 'chromium';
  const found = isAbsolute(name)
    ? isExecutable(name)
      ? name
      : undefined
    : (process.env['PATH'] ?? '')
        .split(delimiter)
        .map((d) => join(d, name))
        .find(isExecutable);
  if (!found) throw new Error(`Chromium not found (${name}); install it with ${CHROMIUM_INSTALL}`);
  return found;
}

/** Runs in the page: per canvas, its chart id, size and the pixels that differ from its most common colour. */
const CANVAS_PIXELS = `(() => [...document.querySelectorAll('canvas')].map((c) => {
  const fig = c.closest('[id^="chart-"]');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const freq = new Map();
  for (let i = 0; i < d.length; i += 4) {
    const k = ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
    freq.set(k, (freq.get(k) || 0) + 1);
  }
  let bg = 0;
  for (const n of freq.values()) bg = Math.max(bg, n);
  let ink = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i + 3] >= 128 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) >= 50) ink++;
  return { id: fig ? fig.id.slice(6) : '', width: c.width, height: c.height, drawnPixels: d.length / 4 - bg, inkPixels: ink };
}))()`;

/** Runs in the page: every [data-metric] element. */
const CELLS = `[...document.querySelectorAll('[data-metric]')].map((e) => ({
  scenario: e.getAttribute('data-scenario') || '', metric: e.getAttribute('data-metric'), text: e.textContent.trim() }))`;

/**
 * Open `htmlFile` in headless Chromium offline, wait until its charts have
 * drawn (`body[data-charts-drawn]`, at most 20 s), write a full-page PNG
 * screenshot to `pngOut` (folders created), and report what the page did.
 * @throws Error when Chromium is missing (naming CHROMIUM_INSTALL), the page does not load, or the charts never finish drawing.
 */
export async function openReport(htmlFile: string, pngOut: string): Promise<OpenedReport> {
  const executablePath = chromiumPath();
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--proxy-server=127.0.0.1:9', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 });
    const consoleErrors: string[] = [];
    const blockedRequests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${String(e)}`));
    page.on('dialog', (d) => {
      consoleErrors.push(`dialog ${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => undefined);
    });
    const url = pathToFileURL(resolve(htmlFile)).href;
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      const u = req.url();
      if (u === url || u.startsWith('data:') || u.startsWith('blob:')) req.continue().catch(() => undefined);
      else {
        blockedRequests.push(u);
        req.abort().catch(() => undefined);
      }
    });
    await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
    try {
      await page.waitForSelector('body[data-charts-drawn]', { timeout: 20_000 });
    } catch {
      throw new Error(
        `${htmlFile}: the charts did not finish drawing within 20 s (errors: ${consoleErrors.join('; ') || 'none'})`,
      );
    }
    mkdirSync(dirname(resolve(pngOut)), { recursive: true });
    await page.screenshot({ path: pngOut as `${string}.png`, fullPage: true, type: 'png' });
    const canvases = (await page.evaluate(CANVAS_PIXELS)) as OpenedReport['canvases'];
    const cells = (await page.evaluate(CELLS)) as OpenedReport['cells'];
    const text = (await page.evaluate('document.body.innerText')) as string;
    return { consoleErrors, blockedRequests, canvases, cells, text };
  } finally {
    await browser.close();
  }
}
