/**
 * The async LLM task queue on Redis Streams (the design notes' LLM queue):
 *
 * - POST /api/llmchat/prompts/{scene}/api stores the task state in a hash
 *   `arena:task:{id}` (TTL TASK_RESULT_TTL_SECONDS) and XADDs an entry
 *   {task_id} to the stream `arena:llm:tasks`, in one MULTI; answers 202.
 * - The queue worker (consumer group `llm-workers`) reads with XREADGROUP,
 *   runs the simulated LLM call and completes the task with one Lua script
 *   (store result + XACK + XDEL, exactly once, see redis.ts). Entries of a
 *   consumer that died stay pending and are reclaimed with XAUTOCLAIM after
 *   QUEUE_CLAIM_MIN_IDLE_MS by a live consumer.
 * - GET /api/llmchat/tasks/{id} reads the hash; `?sync=true` waits on the list
 *   `arena:task:{id}:done` (BLPOP) that completion pushes to.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sleep } from '../../lib/util.js';
import type { RedisPool } from './redis.js';

/** The task stream. */
export const STREAM = 'arena:llm:tasks';
/** The consumer group of the queue workers. */
export const GROUP = 'llm-workers';
/** Key of a task's state (hash). */
export const taskKey = (id: string) => `arena:task:${id}`;
/** Key of the list a task's completion pushes to (what `?sync=true` waits on). */
export const notifyKey = (id: string) => `arena:task:${id}:done`;

/** A task's lifecycle. */
export type TaskStatus = 'queued' | 'running' | 'done' | 'failed';

/** A task as GET /api/llmchat/tasks/{id} returns it. */
export interface TaskView {
  task_id: string;
  status: TaskStatus;
  scene: string;
  user_id: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Deliveries to a consumer so far (more than 1 after a reclaim). */
  attempts: number;
  /** Times the task was completed: 1 once done (exactly once), 0 before. */
  completions: number;
  completed_by: string | null;
  /** True once a consumer took the entry over with XAUTOCLAIM (its first consumer died or hung). */
  reclaimed: boolean;
  result: { text: string; tokens: number; latency_ms: number } | null;
  error: string | null;
}

/** Create the consumer group (and the stream) if missing. Idempotent. */
export async function ensureGroup(r: Redis): Promise<void> {
  try {
    await r.xgroup('CREATE', STREAM, GROUP, '0', 'MKSTREAM');
  } catch (e) {
    if (!/BUSYGROUP/.test((e as Error).message)) throw e;
  }
}

/** A new task. `latencyMs` overrides the sampled LLM latency (tests, load tests). */
export interface NewTask {
  scene: string;
  prompt: string;
  userId?: string;
  latencyMs?: number;
}

/**
 * Store the task and queue it (one MULTI).
 * @returns the task id (a UUID).
 */
export async function enqueueTask(r: Redis, t: NewTask, ttlSeconds: number): Promise<string> {
  const id = randomUUID();
  const fields: Record<string, string> = {
    status: 'queued',
    scene: t.scene,
    prompt: t.prompt,
    created_at: new Date().toISOString(),
    attempts: '0',
    completions: '0',
  };
  if (t.userId) fields['user_id'] = t.userId;
  if (t.latencyMs !== undefined) fields['latency_ms'] = String(t.latencyMs);
  const res = await r
    .multi()
    .hset(taskKey(id), fields)
    .expire(taskKey(id), ttlSeconds)
    .xadd(STREAM, '*', 'task_id', id)
    .exec();
  const failed = res?.find(([err]) => err);
  if (!res || failed) throw failed?.[0] ?? new Error('MULTI aborted');
  return id;
}

/** The task's public view, or null when unknown or expired. */
export async function getTask(r: Redis, id: string): Promise<TaskView | null> {
  const h = await r.hgetall(taskKey(id));
  if (!h['status']) return null;
  return {
    task_id: id,
    status: h['status'] as TaskStatus,
    scene: h['scene'] ?? '',
    user_id: h['user_id'] ?? null,
    created_at: h['created_at'] ?? '',
    started_at: h['started_at'] || null,
    finished_at: h['finished_at'] || null,
    attempts: Number(h['attempts'] ?? 0),
    completions: Number(h['completions'] ?? 0),
    completed_by: h['completed_by'] || null,
    reclaimed: h['reclaimed'] === '1',
    result: h['result'] ? (JSON.parse(h['result']) as TaskView['result']) : null,
    error: h['error'] || null,
  };
}

/**
 * Wait until the task is done or failed, at most timeoutMs.
 * Uses BLPOP on a pooled blocking connection (polls every 100 ms when
 * REDIS_MAX_CONNECTIONS is 1).
 * @returns the final view, or null on timeout / unknown task.
 */
export async function waitForTask(
  pool: RedisPool,
  id: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<TaskView | null> {
  const deadline = Date.now() + timeoutMs;
  const final = (v: TaskView | null) => v !== null && (v.status === 'done' || v.status === 'failed');
  let v = await getTask(pool.shared, id);
  if (v === null || final(v)) return v;
  while (Date.now() < deadline && !signal?.aborted) {
    const left = deadline - Date.now();
    if (pool.blockingMax >= 1) {
      // BLPOP timeout in seconds (fractions allowed since Redis 6)
      await pool.withBlocking(left, signal, (c) => c.blpop(notifyKey(id), Math.max(0.01, Math.min(left, 5000) / 1000)));
    } else {
      await sleep(Math.min(100, left));
    }
    v = await getTask(pool.shared, id);
    if (v === null || final(v)) return v;
  }
  return v;
}

/**
 * Queue length (XLEN: entries not yet completed, since completion deletes the
 * entry), pending (delivered to a consumer, not acknowledged) and lag (never
 * delivered = length - pending; Redis' own XINFO `lag` becomes unknown after
 * XDEL, so it is derived).
 */
export async function queueFigures(
  r: Redis,
): Promise<{ length: number; lag: number; pending: number; consumers: number }> {
  const [len, groups] = await Promise.all([r.xlen(STREAM), r.xinfo('GROUPS', STREAM).catch(() => [] as unknown[])]);
  let pending = 0;
  let consumers = 0;
  for (const g of groups as unknown[][]) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1];
    if (o['name'] !== GROUP) continue;
    pending = Number(o['pending'] ?? 0);
    consumers = Number(o['consumers'] ?? 0);
  }
  return { length: len, lag: Math.max(0, len - pending), pending, consumers };
}
