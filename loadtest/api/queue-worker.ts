/**
 * The queue worker: one consumer of the `llm-workers` group (name
 * `qw-<host>-<pid>`), at most ASYNC_CONCURRENCY entries in progress.
 *
 * - New entries: XREADGROUP ... COUNT <free> BLOCK 1000 STREAMS arena:llm:tasks >
 *   on a dedicated (blocking) connection, only while a slot is free.
 * - Reclaim: every QUEUE_CLAIM_MIN_IDLE_MS / 2, XAUTOCLAIM takes entries idle
 *   longer than QUEUE_CLAIM_MIN_IDLE_MS (their consumer died or hangs).
 * - Heartbeat: every QUEUE_CLAIM_MIN_IDLE_MS / 3 the worker re-claims its own
 *   in-progress entries (XCLAIM ... JUSTID resets their idle time without
 *   counting a delivery), so a long LLM call is not stolen from a live worker.
 * - Completion: one Lua script stores the result, XACKs and XDELs (exactly once).
 * - A task delivered more than QUEUE_MAX_DELIVERIES times is marked failed.
 * - stop(): no new reads; in-progress entries get `graceMs` to finish, the
 *   rest stay pending and are reclaimed by another consumer.
 */
import { hostname } from 'node:os';
import { errText } from '../../lib/errors.js';
import { sleep } from '../../lib/util.js';
import type { ApiConfig } from './config.js';
import { LlmError, LlmRateLimitedError, type SimulatedLlm } from './llm.js';
import type { Metrics } from './metrics.js';
import { ensureGroup, GROUP, notifyKey, STREAM, taskKey } from './queue.js';
import type { RedisPool } from './redis.js';
import { AbortedError } from './semaphore.js';

type Entry = [id: string, fields: string[] | null];

/** The pod's consumer of the task stream (see the file comment). */
export class QueueWorker {
  readonly consumer = `qw-${hostname()}-${process.pid}`;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private stopping = false;
  private loopDone: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly cfg: ApiConfig,
    private readonly redis: RedisPool,
    private readonly llm: SimulatedLlm,
    private readonly metrics: Metrics,
  ) {}

  /** Entries in progress now. */
  get busy(): number {
    return this.inFlight.size;
  }

  /** Create the group if needed and start consuming. */
  async start(): Promise<void> {
    await ensureGroup(this.redis.shared);
    const minIdle = this.cfg.queueClaimMinIdleMs;
    const reclaim = () => void this.reclaim().catch((e) => this.log(`reclaim: ${errText(e)}`));
    const heartbeat = () => void this.heartbeat().catch((e) => this.log(`heartbeat: ${errText(e)}`));
    this.timers.push(setInterval(reclaim, Math.max(100, minIdle / 2)));
    this.timers.push(setInterval(heartbeat, Math.max(100, minIdle / 3)));
    await this.reclaim().catch((e) => this.log(`reclaim: ${errText(e)}`));
    this.loopDone = this.loop();
  }

  private log(msg: string): void {
    process.stderr.write(`[queue ${process.pid}] ${msg}\n`);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const free = this.cfg.asyncConcurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race([...this.inFlight.values(), sleep(1000)]);
        continue;
      }
      try {
        const res = (await this.redis.withBlocking(5000, this.abort.signal, (c) =>
          c.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', free, 'BLOCK', 1000, 'STREAMS', STREAM, '>'),
        )) as [string, Entry[]][] | null;
        for (const [, entries] of res ?? []) for (const e of entries) this.begin(e, false);
      } catch (e) {
        if (this.stopping) break;
        const msg = (e as Error).message;
        if (/NOGROUP/.test(msg)) await ensureGroup(this.redis.shared).catch(() => undefined);
        else this.log(`read: ${msg}`);
        await sleep(500);
      }
    }
  }

  private async reclaim(): Promise<void> {
    if (this.stopping) return;
    const free = this.cfg.asyncConcurrency - this.inFlight.size;
    if (free <= 0) return;
    const minIdle = this.cfg.queueClaimMinIdleMs;
    const claimed = await this.redis.shared.xautoclaim(STREAM, GROUP, this.consumer, minIdle, '0-0', 'COUNT', free);
    const [, entries, deleted] = claimed as [string, Entry[], string[]?];
    for (const e of entries) this.begin(e, true);
    if (deleted && deleted.length > 0) await this.redis.shared.xack(STREAM, GROUP, ...deleted);
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.inFlight.keys()];
    if (ids.length > 0) await this.redis.shared.xclaim(STREAM, GROUP, this.consumer, 0, ...ids, 'JUSTID');
  }

  private begin([entryId, fields]: Entry, reclaimed: boolean): void {
    if (this.inFlight.has(entryId)) return;
    if (reclaimed) this.metrics.reclaimed.inc();
    const p = this.process(entryId, fields ?? [], reclaimed)
      .catch((e) => this.log(`entry ${entryId}: ${errText(e)}`))
      .finally(() => this.inFlight.delete(entryId));
    this.inFlight.set(entryId, p);
  }

  private async complete(
    taskId: string,
    entryId: string,
    status: 'done' | 'failed',
    result: string,
    error: string,
  ): Promise<void> {
    const r = await this.redis.shared.arenaCompleteTask(
      taskKey(taskId),
      notifyKey(taskId),
      STREAM,
      GROUP,
      entryId,
      status,
      result,
      error,
      new Date().toISOString(),
      this.cfg.taskResultTtlSeconds,
      this.consumer,
    );
    this.metrics.tasks.inc({ outcome: r === 1 ? status : r === 0 ? 'duplicate' : 'expired' });
  }

  private async process(entryId: string, fields: string[], reclaimed: boolean): Promise<void> {
    const i = fields.indexOf('task_id');
    const taskId = i >= 0 ? fields[i + 1] : undefined;
    if (!taskId) {
      await this.redis.shared.multi().xack(STREAM, GROUP, entryId).xdel(STREAM, entryId).exec();
      return;
    }
    const key = taskKey(taskId);
    const [[, attemptsRaw], [, state]] = (await this.redis.shared
      .multi()
      .hincrby(key, 'attempts', 1)
      .hmget(key, 'status', 'latency_ms')
      .exec()) as [[unknown, number], [unknown, (string | null)[]]];
    const attempts = Number(attemptsRaw);
    const [status, latency] = state;
    if (!status) {
      // state expired (or never existed): drop the entry
      await this.redis.shared.del(key);
      await this.complete(taskId, entryId, 'failed', '', 'task state expired');
      return;
    }
    if (status === 'done' || status === 'failed') {
      await this.complete(taskId, entryId, status, '', ''); // duplicate delivery: just acknowledge
      return;
    }
    if (attempts > this.cfg.queueMaxDeliveries) {
      await this.complete(taskId, entryId, 'failed', '', `gave up after ${attempts - 1} deliveries`);
      return;
    }
    const running = ['status', 'running', 'started_at', new Date().toISOString(), 'consumer', this.consumer];
    await this.redis.shared.hset(key, ...running, 'reclaimed', reclaimed ? '1' : '0');
    try {
      await this.llm.reservePermit(this.abort.signal);
      const r = await this.llm.generate({
        latencyMs: latency ? Number(latency) : undefined,
        signal: this.abort.signal,
      });
      this.metrics.llmCalls.inc({ outcome: 'ok' });
      await this.complete(
        taskId,
        entryId,
        'done',
        JSON.stringify({ text: r.text, tokens: r.tokens, latency_ms: r.latencyMs }),
        '',
      );
    } catch (e) {
      if (e instanceof AbortedError) return; // shutting down: the entry stays pending for another consumer
      if (e instanceof LlmError || e instanceof LlmRateLimitedError) {
        this.metrics.llmCalls.inc({ outcome: e instanceof LlmError ? 'error' : 'rate_limited' });
        await this.complete(taskId, entryId, 'failed', '', e.message);
        return;
      }
      throw e;
    }
  }

  /** Stop reading; give in-progress entries `graceMs`, then abort them (they stay pending). */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    const all = Promise.allSettled([...this.inFlight.values()]);
    const timedOut = await Promise.race([all.then(() => false), sleep(graceMs).then(() => true)]);
    this.abort.abort();
    if (timedOut) await all;
    await this.loopDone.catch(() => undefined);
  }
}
