/**
 * File input and output for the CLI: read ArenaDeployment files, write output
 * files atomically (temp file + rename) so nothing is left half-written.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { validateText, type DocumentResult } from '../operator/api/v1alpha1/validate.js';
import type { ArenaDeployment } from '../operator/api/v1alpha1/schema.js';
import { fileErrorText } from '../lib/errors.js';
import { UserError } from './errors.js';

/** Read a file (or stdin for `-`) as UTF-8. @throws UserError when it cannot be read. */
export function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${fileErrorText(e)}`);
  }
}

/** One error line per field error: `FILE: spec.x: message`, with `(document N)` when the file holds several. */
export function formatErrors(file: string, results: DocumentResult[]): string[] {
  const many = results.length > 1;
  return results.flatMap((r) =>
    r.errors.map((e) => `${file}${many ? ` (document ${r.index}, line ${r.line})` : ''}: ${e.path}: ${e.message}`),
  );
}

/** Read and validate every document of a file. @throws UserError listing every error (one per line). */
export function loadArenaDeployments(file: string): ArenaDeployment[] {
  const results = validateText(readInput(file));
  const lines = formatErrors(file, results);
  if (lines.length > 0) throw new UserError(lines.join('\n'));
  return results.map((r) => r.object!);
}

/** Write files atomically: every file is written to a temp name first, then all are renamed. */
export function writeFilesAtomically(dir: string, files: { name: string; content: string }[]): void {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = files.map((f) => {
      const path = join(dir, f.name);
      mkdirSync(dirname(path), { recursive: true });
      const t = `${path}.tmp-${process.pid}`;
      writeFileSync(t, f.content);
      return { t, path };
    });
    for (const { t, path } of tmp) renameSync(t, path);
  } catch (e) {
    throw new UserError(`cannot write to ${dir}: ${(e as Error).message}`);
  }
}

/**
 * The password in the first line of `file` (a password file keeps it off the command line).
 * @throws UserError `<flag>: cannot read <file>: <why>`.
 */
export function readPasswordFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n')[0]!.trim();
  } catch (e) {
    throw new UserError(`${flag}: cannot read ${file}: ${fileErrorText(e)}`);
  }
}
