/**
 * The page shell both HTML pages share (report.html, bench.html): a
 * Content-Security-Policy that forbids every fetch, uPlot's build and CSS
 * inlined from the installed package, the page's data as one JSON blob, and
 * the client script that draws the charts from it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CLIENT_SCRIPT, REPORT_CSS, type ClientData } from './html-client.js';
import { html, jsonForScript, raw, type SafeHtml } from './html-template.js';

/** No fetch of any kind: inline scripts and styles only, images only as data: URLs. */
export const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const require = createRequire(import.meta.url);
let uplotAssets: { js: string; css: string } | undefined;

/**
 * uPlot's minified IIFE build and CSS, from the installed package.
 * @throws Error when the `uplot` package is not installed (a broken install, not user input).
 */
function uplot(): { js: string; css: string } {
  uplotAssets ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplotAssets;
}

/** Code inlined in a <script> or <style>: a closing tag inside it is escaped. */
const inline = (code: string, tag: 'script' | 'style') => raw(code.replace(new RegExp(`</(${tag})`, 'gi'), '<\\/$1'));

/** What a page puts in the shell. */
export interface PageParts {
  title: string;
  /** Extra CSS after the report's own. */
  css?: string;
  /** `<meta name="generator">`, when given. */
  generator?: string;
  /** The page's sections (already escaped). */
  body: SafeHtml;
  footer: SafeHtml | string;
  /** What the client script draws. */
  data: ClientData;
}

/**
 * One complete, self-contained HTML document.
 * @throws Error when uPlot is not installed.
 */
export function renderPage(p: PageParts): string {
  const { js, css } = uplot();
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="Content-Security-Policy" content="${CSP}" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${p.generator ? html`<meta name="generator" content="${p.generator}" />` : ''}
        <title>${p.title}</title>
        <style>
          ${inline(css, 'style')}
        </style>
        <style>
          ${raw(REPORT_CSS + (p.css ?? ''))}
        </style>
      </head>
      <body>
        <main>
          <h1>${p.title}</h1>
          ${p.body}
          <footer>${p.footer}</footer>
        </main>
        <script type="application/json" id="arena-data">
          ${raw(jsonForScript(p.data))}
        </script>
        <script>
          ${inline(js, 'script')};
        </script>
        <script>
          ${raw(CLIENT_SCRIPT)};
        </script>
      </body>
    </html> `;
  return page.value;
}
