/**
 * The API's GET /health (loadtest/api): each answer is one worker's view, so a
 * reading asks on fresh connections until every HTTP worker the answer
 * announces (cluster.http_workers_expected) has answered, bounded by
 * 4 x that many requests, and sums the slot and DB pool figures over them.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface WorkerHealth {
  pid: number;
  max_concurrent: number;
  available_slots: number;
  processing_count: number;
  waiting_count: number;
  active_sessions: number;
  in_flight: number;
  db_pool: { max: number; total: number; idle: number; waiting: number };
  cluster?: {
    primary_pid?: number;
    http_workers_expected: number;
    http_workers_ready: number;
    queue_worker_pid: number | null;
  };
}

export interface HealthReading {
  workers_seen: number;
  workers_expected: number | null;
  http_workers_ready: number | null;
  queue_worker_pid: number | null;
  /** Summed over the workers seen. */
  max_concurrent: number;
  available_slots: number;
  processing_count: number;
  waiting_count: number;
  in_flight: number;
  db_pool_max: number;
  db_pool_total: number;
  db_pool_idle: number;
  db_pool_waiting: number;
  per_worker: WorkerHealth[];
}

/** GET a URL on a fresh connection; resolves {status, body}. */
export function httpGetUrl(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', agent: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url.pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Read /health from every worker (see the file comment). `workers` overrides the announced count. */
export async function readHealth(url: URL, o: { timeoutMs?: number; workers?: number } = {}): Promise<HealthReading> {
  const timeoutMs = o.timeoutMs ?? 2000;
  const seen = new Map<number, WorkerHealth>();
  let expected = o.workers ?? null;
  let last: WorkerHealth | undefined;
  for (let i = 0; i < 4 * (expected ?? 1) && seen.size < (expected ?? 1); i++) {
    const r = await httpGetUrl(url, timeoutMs);
    if (r.status !== 200) throw new Error(`GET ${url.pathname} answered ${r.status}`);
    let h: WorkerHealth;
    try {
      h = JSON.parse(r.body) as WorkerHealth;
    } catch {
      throw new Error(`GET ${url.pathname}: not JSON`);
    }
    last = h;
    seen.set(n(h.pid), h);
    if (o.workers === undefined && h.cluster && typeof h.cluster.http_workers_expected === 'number')
      expected = h.cluster.http_workers_expected;
  }
  const ws = [...seen.values()];
  const total = (f: (h: WorkerHealth) => unknown) => ws.reduce((a, h) => a + n(f(h)), 0);
  return {
    workers_seen: ws.length,
    workers_expected: expected,
    http_workers_ready: last?.cluster?.http_workers_ready ?? null,
    queue_worker_pid: last?.cluster?.queue_worker_pid ?? null,
    max_concurrent: total((h) => h.max_concurrent),
    available_slots: total((h) => h.available_slots),
    processing_count: total((h) => h.processing_count),
    waiting_count: total((h) => h.waiting_count),
    in_flight: total((h) => h.in_flight),
    db_pool_max: total((h) => h.db_pool?.max),
    db_pool_total: total((h) => h.db_pool?.total),
    db_pool_idle: total((h) => h.db_pool?.idle),
    db_pool_waiting: total((h) => h.db_pool?.waiting),
    per_worker: ws,
  };
}
