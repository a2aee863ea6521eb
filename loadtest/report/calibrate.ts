/**
 * Model calibration (`arena calibrate`, issue 12): from one low-load run's
 * result.json against the local stack, measure the service times the planner
 * reads from `spec.load.requestMix[]` and write them back as a spec patch.
 * Pure (no I/O): the CLI runs the load and writes the files.
 *
 * What is measured (docs/capacity-model.md, "Calibration"), over the steady
 * phase, from the sampler's PgBouncer SHOW STATS counters:
 * - mean transaction time, ms = delta total_xact_time / delta total_xact_count.
 *   PgBouncer counts a client's wait for a server inside total_xact_time
 *   (checked on this stack: the busy servers Little's law gives from it
 *   exceed the pool at load), so the server hold per transaction is
 *   (delta total_xact_time - delta total_wait_time) / delta total_xact_count;
 * - the check by Little's law on the server pool: mean sv_active = transaction
 *   rate x mean hold (`littleHoldMs` = mean sv_active / transaction rate);
 * - the hold's cv^2 from the spread of the per-tick means: a tick with n_i
 *   transactions of mean h_i has Var(h_i) = sigma^2 / n_i, so
 *   sigma^2 ~ sum_i n_i (h_i - h)^2 / (ticks - 1) (rough: drift in load over
 *   the run inflates it).
 * PgBouncer's counters are per pool, not per request kind, so one factor
 * scales every kind's dbTimeMs: the measured DB time per request / the spec's
 * (mix-weighted at the run's rates, workloadAtRates), where DB time per
 * request = hold per transaction x transactions per request. When the API
 * runs the spec's dbTransactions this is the measured mean hold per
 * transaction / the spec's (`factors.holdPerTransaction`, also recorded);
 * when it runs fewer or more (the reference API's SSE save, its task submit),
 * the per-request factor keeps the server pool's busy time, which is what its
 * utilisation is, right. The hold's cv^2 is measured and the per-kind
 * dbHoldCv2 that would give it is recorded, but not written to the patch:
 * the per-tick estimate counts load drift as spread (at 45 % busy on this
 * machine it read 22). Sync kinds' serviceTimeMs = the engine's mean
 * http_req_duration - the calibrated dbTimeMs - dbTransactions x the measured
 * mean waits per transaction (app pool + PgBouncer). LLM times are the
 * simulated provider's (the spec's own llmTimeMs drives the simulation), so
 * they are not calibrated, nor are stream and async kinds' serviceTimeMs
 * (their duration is the LLM call's, or only the submit).
 *
 * The API's own CPU: `api.cpuMsPerRequest` = the HTTP workers' CPU seconds
 * over the steady phase (the delta of arena_http_worker_cpu_seconds_total
 * between the two /metrics scrapes) / the requests of the mix that arrived in
 * that window. It is what the planner's apiEventLoop queue serves per request
 * (docs/capacity-model.md, "The API's event loop"). It falls as the load
 * grows, so with a second run (`--verify`) the two runs' busy fractions per
 * worker give a line, busy = cpuBaseFraction + rate x cpuMsPerRequest (fitCpu).
 */
import { createTwoFilesPatch } from 'diff';
import { parseDocument, stringify } from 'yaml';
import { InvalidInputError } from '../../lib/errors.js';
import type { ArenaDeployment } from '../../operator/api/v1alpha1/schema.js';
import { workloadAtRates } from '../../operator/planner/workload.js';
import type { LoadTestResult, ModelComparison } from '../engine/result-schema.js';
import { offeredRates } from './model.js';

type RequestKind = ArenaDeployment['spec']['load']['requestMix'][number];

/** The fields calibration writes: per request kind, and the API's CPU (kind API_KIND). */
export type CalibratedField = 'dbTimeMs' | 'serviceTimeMs' | 'cpuMsPerRequest' | 'cpuBaseFraction';

/** The `kind` of a change to spec.api rather than to a request kind. */
export const API_KIND = '(api)';

/** One line of the table: a kind's field, the spec's value (null: not set) and the calibrated one. */
export interface CalibrationChange {
  kind: string;
  field: CalibratedField;
  spec: number | null;
  measured: number;
}

/** The API workers' CPU per request over the steady phase (arena_http_worker_cpu_seconds_total). */
export interface CpuMeasurement {
  /** CPU seconds of the HTTP workers in the window. */
  cpuSeconds: number;
  /** The window (the two /metrics scrapes), s. */
  seconds: number;
  /** Requests of the mix that arrived in it (steady iterations per second x seconds). */
  requests: number;
  /** cpuSeconds x 1000 / requests, ms. */
  cpuMsPerRequest: number;
  /** HTTP worker processes. */
  workers: number;
  /** Requests per second per worker. */
  requestsPerSecondPerWorker: number;
  /** CPU seconds per second per worker: how busy each event loop was. */
  busyPerWorker: number;
}

/** The line busy = cpuBaseFraction + requests/s per worker x cpuMsPerRequest / 1000 through two runs. */
export interface CpuFit {
  cpuMsPerRequest: number;
  cpuBaseFraction: number;
  /** The two runs' measurements, the lower rate first. */
  levels: [CpuMeasurement, CpuMeasurement];
}

/** What the PgBouncer counters measured over the steady phase (times ms, rates per second). */
export interface DbMeasurement {
  /** Sampler ticks in the steady phase with every counter read. */
  ticks: number;
  seconds: number;
  transactions: number;
  transactionsPerSecond: number;
  /** delta total_xact_time / delta total_xact_count (includes the wait for a server), ms. */
  meanXactTimeMs: number;
  /** delta total_wait_time / delta total_xact_count, ms. */
  meanWaitMs: number;
  /** The server hold per transaction: meanXactTimeMs - meanWaitMs, ms. */
  meanHoldMs: number;
  /** Squared CV of the hold from the per-tick spread; null with fewer than 5 ticks with transactions. */
  holdCv2: number | null;
  /** Mean sv_active over the steady phase (busy server connections); null when not sampled. */
  meanBusy: number | null;
  /** Little's law check: meanBusy / transactionsPerSecond, ms; null without meanBusy. */
  littleHoldMs: number | null;
  /** Measured transactions per request (delta total_xact_count / requests of the kinds with dbTimeMs > 0). */
  transactionsPerRequest: number | null;
}

/** calibration.json (`arena calibrate --out DIR`). */
export interface Calibration {
  apiVersion: 'arena.dev/v1alpha1';
  kind: 'Calibration';
  file: string;
  name: string;
  /** The run's result.json the figures come from. */
  result: string;
  /** Offered arrivals per second per request kind (steady phase). */
  offeredRates: Record<string, number>;
  db: DbMeasurement;
  spec: {
    /** The spec's mean hold per transaction at the run's rates (mix-weighted), ms. */
    meanHoldMs: number;
    /** The spec's cv^2 of the hold mixture. */
    holdCv2: number;
    /** The spec's transactions per request (over the kinds with dbTimeMs > 0). */
    transactionsPerRequest: number;
  };
  factors: {
    /** Measured DB time per request / the spec's: every kind's dbTimeMs is multiplied by it. */
    dbTime: number;
    /** Measured meanHoldMs / the spec's mean hold per transaction (equals dbTime when the transaction counts agree). */
    holdPerTransaction: number;
    /** The per-kind dbHoldCv2 that gives the measured mixture cv^2 (reported, not written); null when not measured. */
    dbHoldCv2: number | null;
  };
  /** Per sync kind: the engine's mean http_req_duration and the waits subtracted, ms. */
  serviceTimes: Record<string, { meanDurationMs: number; dbTimeMs: number; waitsMs: number; serviceTimeMs: number }>;
  /** The API workers' CPU per request; null when the API does not expose its CPU counter. */
  cpu: CpuMeasurement | null;
  /** The line through this run's and a second run's CPU (withCpuFit; arena calibrate --verify). */
  cpuFit?: CpuFit;
  changes: CalibrationChange[];
  notCalibrated: string[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Steady-phase [t, value] points of a sampler series. */
function steadySeries(result: LoadTestResult, figure: string): Map<number, number> {
  const from = result.settings.phases.rampUpMs;
  const to = from + result.settings.phases.steadyMs;
  const s = result.saturation?.series[figure] ?? [];
  return new Map(s.filter((p): p is [number, number] => p[1] !== null && p[0] >= from && p[0] <= to));
}

/** Squared CV of the hold from the per-tick means (see the file's docstring); null with < 5 ticks with transactions. */
function tickCv2(ticks: [number, number, number][], meanHold: number): number | null {
  const rows: { n: number; h: number }[] = [];
  for (let i = 1; i < ticks.length; i++) {
    const n = ticks[i]![1] - ticks[i - 1]![1];
    const busyUs = ticks[i]![2] - ticks[i - 1]![2];
    if (n > 0) rows.push({ n, h: busyUs / 1000 / n });
  }
  if (rows.length < 5 || meanHold <= 0) return null;
  const sigma2 = rows.reduce((s, r) => s + r.n * (r.h - meanHold) ** 2, 0) / (rows.length - 1);
  return r3(sigma2 / meanHold ** 2);
}

/**
 * The PgBouncer figures of a run's steady phase (see the file's docstring).
 * @throws InvalidInputError when the run has no PgBouncer SHOW STATS series
 *   (sampled without --sample, or a PgBouncer older than 1.8) or saw no transaction.
 */
export function measureDb(result: LoadTestResult, dbKinds: readonly string[]): DbMeasurement {
  const count = steadySeries(result, 'pgbouncer.total_xact_count');
  const time = steadySeries(result, 'pgbouncer.total_xact_time_us');
  const wait = steadySeries(result, 'pgbouncer.total_wait_time_us');
  const ticks: [number, number, number][] = [...count]
    .filter(([t]) => time.has(t) && wait.has(t))
    .map(([t, c]) => [t, c, time.get(t)! - wait.get(t)!]);
  if (ticks.length < 2)
    throw new InvalidInputError(
      'the run has no PgBouncer SHOW STATS series (pgbouncer.total_xact_count, total_xact_time_us): run with --sample auto',
    );
  const [t0, c0] = ticks[0]!;
  const [t1, c1] = ticks.at(-1)!;
  const transactions = c1 - c0;
  if (transactions <= 0) throw new InvalidInputError('PgBouncer counted no transaction in the steady phase');
  const seconds = (t1 - t0) / 1000;
  const dTime = time.get(t1)! - time.get(t0)!;
  const dWait = wait.get(t1)! - wait.get(t0)!;
  const meanHoldMs = (dTime - dWait) / 1000 / transactions;
  const busy = [...steadySeries(result, 'pgbouncer.sv_active').values()];
  const meanBusy = busy.length ? busy.reduce((a, b) => a + b, 0) / busy.length : null;
  const tps = transactions / seconds;
  const requests = dbKinds.reduce((s, k) => s + (result.scenarios[k]?.rates.iterations ?? 0), 0) * seconds;
  return {
    ticks: ticks.length,
    seconds: r3(seconds),
    transactions,
    transactionsPerSecond: r3(tps),
    meanXactTimeMs: r3(dTime / 1000 / transactions),
    meanWaitMs: r3(dWait / 1000 / transactions),
    meanHoldMs: r3(meanHoldMs),
    holdCv2: tickCv2(ticks, meanHoldMs),
    meanBusy: meanBusy === null ? null : r3(meanBusy),
    littleHoldMs: meanBusy === null ? null : r3((meanBusy / tps) * 1000),
    transactionsPerRequest: requests > 0 ? r3(transactions / requests) : null,
  };
}

/**
 * The per-kind cv^2 c that makes the hold mixture's cv^2 the measured cs^2 with
 * the calibrated means m_k and visit weights w_k: (1 + c) sum w m^2 / (sum w m)^2 - 1 = cs^2,
 * clamped to the schema's 0..100.
 */
function kindCv2(components: { w: number; m: number }[], measuredCv2: number): number {
  const sw = components.reduce((s, c) => s + c.w, 0);
  const em = components.reduce((s, c) => s + c.w * c.m, 0) / sw;
  const em2 = components.reduce((s, c) => s + c.w * c.m * c.m, 0) / sw;
  return r3(Math.min(100, Math.max(0, ((1 + measuredCv2) * em * em) / em2 - 1)));
}

/**
 * The HTTP workers' CPU per request of the mix over the steady phase: the delta of
 * arena_http_worker_cpu_seconds_total between the two /metrics scrapes / the requests that arrived
 * between them (the steady phase's iterations per second, all kinds, x the window). Null without the counter.
 */
export function measureCpu(
  result: LoadTestResult,
  rates: Record<string, number>,
  workers: number,
): CpuMeasurement | null {
  const w = result.apiWaits;
  if (w?.httpWorkerCpuSeconds === undefined || !(workers > 0)) return null;
  const seconds = (w.toMs - w.fromMs) / 1000;
  const perSecond = Object.values(rates).reduce((a, b) => a + b, 0);
  const requests = perSecond * seconds;
  if (!(seconds > 0) || !(requests > 0)) return null;
  return {
    cpuSeconds: w.httpWorkerCpuSeconds,
    seconds: r3(seconds),
    requests: Math.round(requests),
    cpuMsPerRequest: r3((w.httpWorkerCpuSeconds * 1000) / requests),
    workers,
    requestsPerSecondPerWorker: r3(perSecond / workers),
    busyPerWorker: r3(w.httpWorkerCpuSeconds / seconds / workers),
  };
}

/**
 * The straight line y = intercept + slope x through two points (x0, y0), (x1, y1); null when x0 = x1.
 * Used for the figures that are fitted on two runs or levels (fitCpu, bench's host CPU line).
 */
export function lineThrough(
  [x0, y0]: readonly [number, number],
  [x1, y1]: readonly [number, number],
): { slope: number; intercept: number } | null {
  if (x1 === x0) return null;
  const slope = (y1 - y0) / (x1 - x0);
  return { slope, intercept: y0 - slope * x0 };
}

/**
 * The straight line busy = cpuBaseFraction + lambda_w x cpuMsPerRequest / 1000 through two runs' busy
 * fractions per worker (lambda_w requests per second per worker). A worker's CPU per request falls with
 * the load, so one low-load run alone over-predicts the loop at the target (docs/capacity-model.md,
 * "The API's event loop"). When the line would have a negative slope or intercept (noise, or rates too
 * close), it is the line through the origin and the busier run (cpuBaseFraction 0).
 * @returns null when the two runs have the same rate.
 */
export function fitCpu(a: CpuMeasurement, b: CpuMeasurement): CpuFit | null {
  const [lo, hi] = a.requestsPerSecondPerWorker <= b.requestsPerSecondPerWorker ? [a, b] : [b, a];
  const line = lineThrough(
    [lo.requestsPerSecondPerWorker, lo.busyPerWorker],
    [hi.requestsPerSecondPerWorker, hi.busyPerWorker],
  );
  if (!line) return null;
  const { slope, intercept: base } = line; // slope: CPU s per request
  if (slope > 0 && base >= 0 && base < 0.99)
    return { cpuMsPerRequest: r3(slope * 1000), cpuBaseFraction: r3(base), levels: [lo, hi] };
  return { cpuMsPerRequest: hi.cpuMsPerRequest, cpuBaseFraction: 0, levels: [lo, hi] };
}

/**
 * The calibration with the API's CPU from two runs (fitCpu of its own run and `second`): its
 * cpuMsPerRequest change replaced by the fit's slope, a cpuBaseFraction change added, `cpuFit` recorded.
 * Unchanged when either run did not measure the CPU or the rates are equal.
 */
export function withCpuFit(c: Calibration, ad: ArenaDeployment, second: CpuMeasurement | null): Calibration {
  const fit = c.cpu && second ? fitCpu(c.cpu, second) : null;
  if (!fit) return c;
  const changes = c.changes.filter((x) => x.kind !== API_KIND);
  changes.push(
    {
      kind: API_KIND,
      field: 'cpuMsPerRequest',
      spec: ad.spec.api.cpuMsPerRequest ?? null,
      measured: fit.cpuMsPerRequest,
    },
    {
      kind: API_KIND,
      field: 'cpuBaseFraction',
      spec: ad.spec.api.cpuBaseFraction ?? null,
      measured: fit.cpuBaseFraction,
    },
  );
  return { ...c, cpuFit: fit, changes };
}

/** The sync kinds' serviceTimeMs (see the file's docstring). */
function serviceTimes(result: LoadTestResult, mix: RequestKind[], factor: number, db: DbMeasurement) {
  const appWait = result.apiWaits?.queues['appDbPool']?.meanMs ?? 0;
  const out: Calibration['serviceTimes'] = {};
  for (const k of mix) {
    const d = result.scenarios[k.name]?.metrics['http_req_duration'];
    if (k.kind !== 'sync' || !d || !(d.mean > 0)) continue;
    const dbTimeMs = k.dbTimeMs * factor;
    const waitsMs = k.dbTimeMs > 0 ? (k.dbTransactions ?? 1) * (appWait + db.meanWaitMs) : 0;
    out[k.name] = {
      meanDurationMs: r3(d.mean),
      dbTimeMs: r3(dbTimeMs),
      waitsMs: r3(waitsMs),
      serviceTimeMs: r3(Math.max(0, d.mean - dbTimeMs - waitsMs)),
    };
  }
  return out;
}

/**
 * Calibrate the request mix of `ad` on one run's result (see the file's docstring).
 * @param resultPath where the result.json is (recorded in calibration.json).
 * @throws InvalidInputError when the run offered none of the mix's kinds, the mix has no DB time,
 *   or the PgBouncer series are missing (measureDb).
 */
export function calibrate(result: LoadTestResult, ad: ArenaDeployment, file: string, resultPath: string): Calibration {
  const mix = ad.spec.load.requestMix;
  const rates = offeredRates(
    result,
    mix.map((k) => k.name),
  );
  if (Object.values(rates).every((r) => r <= 0))
    throw new InvalidInputError(`${resultPath}: the run offered none of the request kinds of ${file}`);
  const w = workloadAtRates(rates, mix);
  if (!(w.db.arrivalRatePerSecond > 0))
    throw new InvalidInputError(`${file}: no request kind with dbTimeMs > 0 ran, nothing to calibrate`);
  const dbKinds = mix.filter((k) => k.dbTimeMs > 0);
  const db = measureDb(
    result,
    dbKinds.map((k) => k.name),
  );
  const holdFactor = db.meanHoldMs / w.db.serviceTimeMs;
  const countFactor = db.transactionsPerRequest === null ? 1 : db.transactionsPerRequest / w.db.visitsPerRequest;
  const factor = r3(holdFactor * countFactor);
  const components = dbKinds.map((k) => ({
    w: (rates[k.name] ?? 0) * (k.dbTransactions ?? 1),
    m: (k.dbTimeMs * factor) / (k.dbTransactions ?? 1),
  }));
  const cv2 = db.holdCv2 === null ? null : kindCv2(components, db.holdCv2);
  const st = serviceTimes(result, mix, factor, db);
  const changes: CalibrationChange[] = [];
  for (const k of mix) {
    if (k.dbTimeMs > 0) {
      changes.push({ kind: k.name, field: 'dbTimeMs', spec: k.dbTimeMs, measured: r3(k.dbTimeMs * factor) });
    }
    const s = st[k.name];
    if (s) changes.push({ kind: k.name, field: 'serviceTimeMs', spec: k.serviceTimeMs, measured: s.serviceTimeMs });
  }
  const cpu = measureCpu(result, rates, ad.spec.api.workersPerPod);
  if (cpu && cpu.cpuMsPerRequest > 0)
    changes.push({
      kind: API_KIND,
      field: 'cpuMsPerRequest',
      spec: ad.spec.api.cpuMsPerRequest ?? null,
      measured: cpu.cpuMsPerRequest,
    });
  return {
    apiVersion: 'arena.dev/v1alpha1',
    kind: 'Calibration',
    file,
    name: ad.metadata.name,
    result: resultPath,
    offeredRates: rates,
    db,
    spec: {
      meanHoldMs: r3(w.db.serviceTimeMs),
      holdCv2: r3(w.db.serviceCv2),
      transactionsPerRequest: r3(w.db.visitsPerRequest),
    },
    factors: { dbTime: factor, holdPerTransaction: r3(holdFactor), dbHoldCv2: cv2 },
    serviceTimes: st,
    cpu,
    changes: changes.filter((c) => c.spec !== c.measured),
    notCalibrated: [
      'llmTimeMs: the simulated provider draws it from the spec itself',
      'serviceTimeMs of stream and async kinds: their duration is the LLM call (stream) or only the submit (async)',
      'dbHoldCv2: measured (db.holdCv2, factors.dbHoldCv2) but not written, the per-tick estimate counts load drift as spread',
      'dbTransactions: PgBouncer counts transactions per pool, not per kind (compare db.transactionsPerRequest with spec.transactionsPerRequest)',
    ],
  };
}

/** The ArenaDeployment with the calibrated values (a copy; `ad` is not changed). */
export function calibratedDeployment(ad: ArenaDeployment, c: Calibration): ArenaDeployment {
  const out = structuredClone(ad);
  for (const ch of c.changes) {
    if (ch.field === 'cpuMsPerRequest' || ch.field === 'cpuBaseFraction') {
      out.spec.api[ch.field] = ch.measured; // the changes of kind API_KIND
      continue;
    }
    const k = out.spec.load.requestMix.find((x) => x.name === ch.kind);
    if (k) k[ch.field] = ch.measured;
  }
  return out;
}

/**
 * The spec patch: an ArenaDeployment document with only the changed
 * `spec.load.requestMix` entries, each complete (the spec's entry with the
 * calibrated values), so it is merged by hand by entry name (`mergeRequestMix`);
 * not a JSON merge patch, which would replace the whole list. A measured
 * `spec.api.cpuMsPerRequest` is set beside it.
 */
export function patchDocument(ad: ArenaDeployment, c: Calibration): Record<string, unknown> {
  const changed = new Set(c.changes.map((x) => x.kind));
  const calibrated = calibratedDeployment(ad, c);
  const entries = calibrated.spec.load.requestMix.filter((k) => changed.has(k.name));
  const { cpuMsPerRequest, cpuBaseFraction } = calibrated.spec.api;
  const api = { cpuMsPerRequest, ...(cpuBaseFraction === undefined ? {} : { cpuBaseFraction }) };
  return {
    apiVersion: ad.apiVersion,
    kind: ad.kind,
    metadata: { name: ad.metadata.name, ...(ad.metadata.namespace ? { namespace: ad.metadata.namespace } : {}) },
    spec: {
      ...(changed.has(API_KIND) && cpuMsPerRequest !== undefined ? { api } : {}),
      load: { requestMix: entries },
    },
  };
}

/** The patch as YAML with a header comment saying where it comes from and how to merge it. */
export function patchYaml(ad: ArenaDeployment, c: Calibration): string {
  const head = [
    `# arena calibrate: measured request-mix figures for ${c.file} (run ${c.result})`,
    `# dbTimeMs x ${c.factors.dbTime}: PgBouncer hold ${c.db.meanHoldMs} ms x ${c.db.transactionsPerRequest} transactions per request,`,
    `# the spec ${c.spec.meanHoldMs} ms x ${c.spec.transactionsPerRequest} (docs/capacity-model.md, "Calibration").`,
    '# Replace the entries of the same name in spec.load.requestMix (not a JSON merge patch: that replaces the list).',
    ...(c.cpuFit
      ? ['# spec.api: busy per worker = cpuBaseFraction + requests/s per worker x cpuMsPerRequest / 1000, two runs.']
      : c.cpu
        ? [`# spec.api.cpuMsPerRequest: ${c.cpu.cpuSeconds} CPU s of the HTTP workers / ${c.cpu.requests} requests.`]
        : []),
  ];
  return `${head.join('\n')}\n${stringify(patchDocument(ad, c))}`;
}

/**
 * Merge a patch's requestMix entries into a spec object by name (the plain
 * object as parsed from YAML, before validation), and its spec.api fields
 * (cpuMsPerRequest, cpuBaseFraction) when it has them. Entries not in the spec are appended.
 * @throws InvalidInputError when the patch has no spec.load.requestMix list.
 */
export function mergeRequestMix(specObject: unknown, patch: unknown): unknown {
  const p = patch as { spec?: { api?: Record<string, unknown>; load?: { requestMix?: unknown } } };
  const entries = p?.spec?.load?.requestMix;
  if (!Array.isArray(entries)) throw new InvalidInputError('the patch has no spec.load.requestMix list');
  const out = structuredClone(specObject) as {
    spec: { api?: Record<string, unknown>; load: { requestMix: { name: string }[] } };
  };
  const api = p.spec?.api;
  if (api && typeof api === 'object') out.spec.api = { ...out.spec.api, ...api };
  const mix = out.spec.load.requestMix;
  for (const e of entries as { name: string }[]) {
    const i = mix.findIndex((k) => k.name === e.name);
    if (i >= 0) mix[i] = { ...mix[i], ...e };
    else mix.push(e);
  }
  return out;
}

/**
 * The spec file's text with the calibrated values set in place (comments and
 * layout kept, yaml's Document API), and the unified diff from the original.
 * @returns null when the text is not one YAML document (the diff is then left out).
 */
export function specDiff(
  text: string,
  file: string,
  ad: ArenaDeployment,
  c: Calibration,
): { text: string; diff: string } | null {
  const doc = parseDocument(text);
  if (doc.errors.length) return null;
  for (const ch of c.changes) {
    if (ch.kind === API_KIND) {
      doc.setIn(['spec', 'api', ch.field], ch.measured);
      continue;
    }
    const i = ad.spec.load.requestMix.findIndex((k) => k.name === ch.kind);
    if (i >= 0) doc.setIn(['spec', 'load', 'requestMix', i, ch.field], ch.measured);
  }
  const out = doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
  return { text: out, diff: createTwoFilesPatch(file, `${file} (calibrated)`, text, out, '', '', { context: 2 }) };
}

/** One queue of the --verify comparison: predicted with the original and the calibrated spec, and measured. */
export interface VerifyRow {
  queue: string;
  utilization: { original: number | null; calibrated: number | null; measured: number | null };
  meanWaitMs: { original: number | null; calibrated: number | null; measured: number | null };
  verdict: { original: string; calibrated: string };
}

/**
 * Predicted vs measured with and without calibration, from one run: the two
 * `modelComparison`s of the same result, one per spec.
 */
export function verifyRows(original: ModelComparison | null, calibrated: ModelComparison | null): VerifyRow[] {
  const names = [...new Set([...Object.keys(original?.queues ?? {}), ...Object.keys(calibrated?.queues ?? {})])];
  return names.map((q) => {
    const o = original?.queues[q];
    const c = calibrated?.queues[q];
    const m = (o ?? c)!.measured;
    return {
      queue: q,
      utilization: {
        original: o?.predicted.utilization ?? null,
        calibrated: c?.predicted.utilization ?? null,
        measured: m.utilization,
      },
      meanWaitMs: {
        original: o?.predicted.meanWaitMs ?? null,
        calibrated: c?.predicted.meanWaitMs ?? null,
        measured: m.meanWaitMs,
      },
      verdict: { original: o?.verdict ?? '-', calibrated: c?.verdict ?? '-' },
    };
  });
}
