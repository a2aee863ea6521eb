/**
 * `arena loadtest report DIR`: write DIR/report.html, the self-contained HTML
 * report of the run whose result is DIR/result.json (DIR may also be the
 * result.json itself; the report goes beside it), and print its path.
 *
 * Exit codes: 0 written; 2 the path is missing, not a result.json of schema
 * version 1, or the folder cannot be written (one line naming the path);
 * 3 internal error.
 */
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { LoadTestResult } from '../../loadtest/engine/result-schema.js';
import { readResult } from '../../loadtest/engine/run.js';
import { renderHtmlReport } from '../../loadtest/report/html.js';
import { renderJunit } from '../../loadtest/report/junit.js';
import { fileErrorText } from '../../lib/errors.js';
import { UserError } from '../errors.js';
import { writeFilesAtomically } from '../io.js';

/** The file names of the HTML report and the JUnit XML inside a run's folder. */
export const REPORT_HTML = 'report.html';
export const JUNIT_XML = 'junit.xml';

/**
 * The result.json a path names: DIR/result.json for a folder, else the file itself.
 * @throws UserError `<path>: no such file or folder ...` when nothing is there.
 */
export function resultFileOf(path: string): string {
  const p = resolve(path);
  try {
    return statSync(p).isDirectory() ? join(p, 'result.json') : p;
  } catch (e) {
    throw new UserError(
      `${path}: ${fileErrorText(e)} (give the folder of a run, with its result.json, or the result.json itself)`,
    );
  }
}

/**
 * Read and check a result.json against `LoadTestResultSchema` (readResult).
 * @throws UserError naming the file and the first field that is wrong.
 */
export function loadResult(file: string): LoadTestResult {
  try {
    return readResult(file);
  } catch (e) {
    throw new UserError((e as Error).message.split('\n')[0]!);
  }
}

/**
 * Write DIR/report.html and DIR/junit.xml for a result, atomically (both or neither).
 * @returns the paths written
 * @throws UserError when the folder cannot be written.
 */
export function writeReports(dir: string, result: LoadTestResult): { html: string; junit: string } {
  writeFilesAtomically(dir, [
    { name: REPORT_HTML, content: renderHtmlReport(result) },
    { name: JUNIT_XML, content: renderJunit(result) },
  ]);
  return { html: join(dir, REPORT_HTML), junit: join(dir, JUNIT_XML) };
}

/**
 * Write the HTML report and junit.xml of the result at `path` (a run's folder or its result.json) beside it.
 * @returns the paths written
 * @throws UserError when the result cannot be read or the reports cannot be written.
 */
export function writeReportsOf(path: string): { html: string; junit: string } {
  const file = resultFileOf(path);
  return writeReports(dirname(file), loadResult(file));
}

/** Register `arena loadtest report DIR` under `arena loadtest`. */
export function registerReport(lt: Command): void {
  lt.command('report')
    .description(
      'write DIR/report.html (one self-contained page: summary, thresholds, predicted vs measured, charts) and DIR/junit.xml from DIR/result.json',
    )
    .argument('<dir>', `the run's folder (arena loadtest run --out DIR) or its result.json`)
    .action((dir: string) => {
      const out = writeReportsOf(dir);
      process.stdout.write(`${out.html}\n${out.junit}\n`);
    });
}
