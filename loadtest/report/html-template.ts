/**
 * Safe HTML building for the HTML report: a tagged template `html` whose
 * every interpolation is escaped with `escape-html` unless it is already
 * `SafeHtml` (the output of another `html` call or of `raw`). Arrays are
 * joined, `null`/`undefined`/`false` render as nothing. A user string (the
 * target URL, a failure reason) therefore cannot become markup by accident.
 */
import escapeHtml from 'escape-html';

/** HTML that is already safe to insert (escaped text or trusted markup). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What `html` accepts in an interpolation. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function part(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return (v as readonly HtmlValue[]).map(part).join('');
  return escapeHtml(String(v as string | number | boolean));
}

/** Build HTML: literal parts as written, every interpolated value escaped (see the file comment). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => (out += part(v) + (strings[i + 1] ?? '')));
  return new SafeHtml(out);
}

/** Trusted markup as is (only for strings this program wrote, never user input). */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/**
 * JSON for a `<script type="application/json">` element: every `<`, `>` and
 * `&` as a \u escape, so neither `</script>` nor `<!--` can end or change the
 * element; JSON.parse reads the same value back.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
