/**
 * `arena loadtest run` below the CLI: check the input and the machine, check
 * the target and the sampler endpoints answer, run the engine and the
 * saturation sampler on one clock, build the result and write it atomically.
 *
 * Errors: `LoadTestInputError` for anything the user can fix (bad target,
 * unreachable target, remote target without allowRemote, a limit the OS sets,
 * a sampler endpoint that does not answer): the CLI prints its one line and
 * exits 2. Anything else is a bug.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { sleep } from '../../lib/util.js';
import { scrape, steadyWaits, type SteadyWaits } from '../sampler/prometheus.js';
import { modelComparison, type ModelInputs } from '../report/model.js';
import { makeTarget, redactUrl, sample, type SampleResult, type Target, type TargetKind } from '../sampler/sampler.js';
import type { RunConfig } from './config.js';
import { checkCapacity, readLimits, type OsLimits } from './limits.js';
import { buildResult, POOLS } from './result.js';
import type { LoadTestResult } from './result-schema.js';
import { LoadTestInputError } from './result-file.js';

// The result file's reading and the input error live in result-file.ts (no HTTP client: the operator loads it).
export { LoadTestInputError, parseResult, readResult } from './result-file.js';
import { runEngine, type SecondPoint } from './runner.js';
import type { ThresholdSpec } from './thresholds.js';

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h);
  return false;
}

/**
 * Parse and check `--target`: an http URL, on loopback unless `allowRemote`.
 * @throws LoadTestInputError naming --target.
 */
export function checkTarget(target: string, allowRemote: boolean): URL {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new LoadTestInputError(
      `--target: must be a URL such as http://127.0.0.1:18000, got ${JSON.stringify(target)}`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new LoadTestInputError(`--target: must be an http:// or https:// URL, got ${u.protocol}`);
  if (!allowRemote && !isLoopbackHost(u.hostname))
    throw new LoadTestInputError(
      `--target: ${u.hostname} is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to load a remote target you are allowed to load`,
    );
  return u;
}

/**
 * Check the target answers HTTP at all (any status) within `timeoutMs`.
 * @throws LoadTestInputError `--target: http://...: unreachable (connection refused)`.
 */
export async function preflightTarget(u: URL, timeoutMs = 3000): Promise<void> {
  try {
    const r = await request(new URL('/', u.origin), {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.body.dump();
  } catch (e) {
    const err = e as Error & { code?: string; cause?: { code?: string } };
    const code = err.code ?? err.cause?.code ?? err.name;
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ENOTFOUND'
          ? 'unknown host'
          : code === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT'
            ? `no answer within ${timeoutMs} ms`
            : `${code}: ${err.message}`;
    throw new LoadTestInputError(`--target: ${redactUrl(u.toString())} is unreachable (${why}); nothing was sent`);
  }
}

/** A sampler endpoint: kind, URL and an optional password kept off the URL. */
export interface SampleEndpoint {
  kind: TargetKind;
  url: string;
  password?: string;
  /** PgBouncer: count only this database's pools. */
  database?: string;
}

/**
 * Open the sampler targets and read each once.
 * @throws LoadTestInputError naming the first endpoint that does not answer (closing the others).
 */
export async function preflightSampler(endpoints: readonly SampleEndpoint[], timeoutMs = 3000): Promise<Target[]> {
  const targets = endpoints.map((e) =>
    makeTarget(e.kind, e.url, {
      ...(e.password !== undefined ? { password: e.password } : {}),
      ...(e.database ? { database: e.database } : {}),
    }),
  );
  const errors = await Promise.all(
    targets.map(async (t) => {
      try {
        await t.read(timeoutMs);
        return null;
      } catch (e) {
        return `--sample ${t.kind}=${t.url}: ${((e as Error).message || String(e)).split('\n')[0]}`;
      }
    }),
  );
  const first = errors.find((e) => e !== null);
  if (first) {
    await Promise.all(targets.map((t) => t.close().catch(() => undefined)));
    throw new LoadTestInputError(`${first} (check the URL and the password: PGPASSWORD or --sample-password-file)`);
  }
  return targets;
}

/** Live figures for the progress display. */
export interface Progress {
  elapsedMs: number;
  totalMs: number;
  second: SecondPoint;
  /** The pool with the highest utilisation in the latest sampler tick. */
  worstPool: { pool: string; utilization: number } | null;
}

export interface LoadTestOptions {
  config: RunConfig;
  target: URL;
  thresholds: ThresholdSpec[];
  sampler: Target[];
  outDir: string;
  fromPlan?: LoadTestResult['settings']['fromPlan'];
  version: string;
  limits?: OsLimits;
  onProgress?: (p: Progress) => void;
  onLog?: (line: string) => void;
  /** Aborting (SIGINT/SIGTERM) stops arrivals; the result is marked partial. */
  signal?: AbortSignal;
  /** Grace for in-flight iterations after an abort, ms. */
  stopGraceMs?: number;
  /** The ArenaDeployment the run loads (-f FILE): the result gets predicted vs measured (`model`). */
  model?: ModelInputs;
}

/** The in-flight count a run may reach: maxVUs (open) or VUs (closed). */
export function plannedInFlight(c: RunConfig): number {
  return c.model.type === 'open' ? c.model.maxVUs : c.model.vus;
}

/**
 * Check the OS limits carry the run. @throws LoadTestInputError naming the limit.
 */
export function checkLimits(c: RunConfig, limits: OsLimits): void {
  const problem = checkCapacity(limits, { inFlight: plannedInFlight(c), targets: 1 });
  if (problem)
    throw new LoadTestInputError(
      `${c.model.type === 'open' ? '--max-vus' : '--concurrency'}: ${problem} (see arena loadtest doctor)`,
    );
}

/**
 * Run the load test and write `outDir/result.json` atomically (a temp file,
 * then a rename; the directory holds nothing else half-written).
 */
export async function runLoadTest(o: LoadTestOptions): Promise<LoadTestResult> {
  const c = o.config;
  const totalMs = c.phases.rampUpMs + c.phases.steadyMs + c.phases.rampDownMs;
  const samplerAbort = new AbortController();
  let samplerRun: Promise<{ result: SampleResult; offsetMs: number }> | undefined;
  let worstPool: Progress['worstPool'] = null;
  const poolOf = Object.fromEntries(Object.entries(POOLS).map(([p, f]) => [f, p]));
  let startAt = 0;
  const health = o.sampler.find((t) => t.kind === 'health');
  let waits: Promise<SteadyWaits | null> | undefined;
  const out = await runEngine(c, {
    signal: o.signal,
    ...(o.stopGraceMs !== undefined ? { stopGraceMs: o.stopGraceMs } : {}),
    onStart: (at) => {
      startAt = at;
      if (health) waits = scrapeSteadyWaits(new URL('/metrics', health.url).toString(), c, at, o.onLog);
      if (o.sampler.length === 0) return;
      const wait = Math.max(0, at - (performance.timeOrigin + performance.now()));
      samplerRun = new Promise((r) => setTimeout(r, wait)).then(async () => {
        const began = performance.timeOrigin + performance.now();
        const result = await sample(o.sampler, {
          intervalMs: 1000,
          durationMs: totalMs + c.gracefulStopMs + 5000,
          signal: samplerAbort.signal,
          onTick: (_n, tMs, errors, util) => {
            for (const e of errors)
              o.onLog?.(
                `sampler: ${(tMs / 1000).toFixed(0)} s: ${e.kind}: ${e.error} (recorded as a gap; sampling goes on)`,
              );
            let best: Progress['worstPool'] = null;
            for (const [f, u] of Object.entries(util))
              if (poolOf[f] && (!best || u > best.utilization)) best = { pool: poolOf[f]!, utilization: u };
            worstPool = best;
          },
        });
        return { result, offsetMs: began - startAt };
      });
    },
    onSecond: (second) => o.onProgress?.({ elapsedMs: (second.t + 1) * 1000, totalMs, second, worstPool }),
  });
  samplerAbort.abort();
  const sampled = samplerRun ? await samplerRun : undefined;
  const apiWaits = waits && !o.signal?.aborted ? await waits : null;
  const result = buildResult(out, {
    config: c,
    target: redactUrl(o.target.toString()),
    thresholds: o.thresholds,
    ...(sampled ? { sampler: sampled } : {}),
    ...(apiWaits ? { apiWaits } : {}),
    ...(o.fromPlan ? { fromPlan: o.fromPlan } : {}),
    ...(o.signal?.aborted ? { partialReason: 'interrupted (SIGINT/SIGTERM)' } : {}),
    version: o.version,
    openFilesSoftLimit: (o.limits ?? readLimits()).openFilesSoft,
  });
  const model = o.model ? modelComparison(result, o.model) : null;
  if (model) result.model = model;
  writeResult(o.outDir, result);
  return result;
}

/**
 * Scrape the API's /metrics when the steady phase starts and when it ends (on
 * the engine's clock, `startAt` epoch ms) and return the steady phase's waits;
 * null (with a log line) when a scrape fails.
 */
async function scrapeSteadyWaits(
  url: string,
  c: RunConfig,
  startAt: number,
  onLog?: (line: string) => void,
): Promise<SteadyWaits | null> {
  const fromMs = c.phases.rampUpMs;
  const toMs = fromMs + c.phases.steadyMs;
  const at = (ms: number) => sleep(Math.max(0, startAt + ms - (performance.timeOrigin + performance.now())));
  try {
    await at(fromMs);
    const before = await scrape(url);
    await at(toMs);
    return steadyWaits(before, await scrape(url), fromMs, toMs);
  } catch (e) {
    onLog?.(`${url}: ${(e as Error).message}; the API's queue waits are left out of the result`);
    return null;
  }
}

/** Write DIR/result.json atomically. @throws LoadTestInputError when DIR cannot be written. */
export function writeResult(dir: string, result: LoadTestResult): string {
  const d = resolve(dir);
  const file = join(d, 'result.json');
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(d, { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(result)}\n`);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new LoadTestInputError(`--out: cannot write ${file}: ${(e as Error).message}`);
  }
  return file;
}
