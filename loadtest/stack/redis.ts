/**
 * The stack's Redis: `run/redis.conf` = `redisConf(plan, ...)` (the
 * operator's renderer; loopback, daemonized, pid file and log in the state
 * directory), started with `redis-server`; healthy once `CONFIG GET
 * maxclients` answers (a warning when Redis lowered it to fit its open-files
 * limit). `probeRedis` is `arena stack status`'s view (the sampler's reader).
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisConf } from '../../operator/render/redis.js';
import { readRedis } from '../sampler/redis.js';
import {
  lastLine,
  logTail,
  pct,
  running,
  StackError,
  step,
  waitFor,
  writeOwned,
  type ProbeResult,
  type StartContext,
} from './component.js';
import { procRef, readPidFile, runCommand } from './procs.js';
import type { ComponentState } from './state.js';

/** The API's task queue (a Redis stream and its consumer group), shown by `status`. */
const QUEUE = { stream: 'arena:llm:tasks', group: 'llm-workers' };

/** Redis's maxclients (CONFIG GET) on a fresh connection. */
async function maxclientsOf(port: number): Promise<number> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await c.connect();
    return Number(((await c.config('GET', 'maxclients')) as string[])[1]);
  } finally {
    c.disconnect();
  }
}

/**
 * Start Redis: redis.conf, `redis-server` (daemonizes), its pid file, then CONFIG GET maxclients, each bounded.
 * @throws StackError when it does not start or does not answer (the caller stops what was started).
 */
export async function startRedis(ctx: StartContext): Promise<void> {
  const { run, logs } = ctx.dirs;
  const redisLog = join(logs, 'redis.log');
  const redisPid = join(run, 'redis.pid');
  const extra = { daemonize: 'yes', pidfile: redisPid, logfile: redisLog };
  writeOwned(
    ctx.tools,
    join(run, 'redis.conf'),
    redisConf(ctx.plan, { bind: '127.0.0.1', port: ctx.ports.redis, dir: run, extra }),
    0o600,
  );
  const want = ctx.profile.redis.maxClients;
  await step(ctx, `redis: start on 127.0.0.1:${ctx.ports.redis} (maxclients ${want})`, async () => {
    const r = await runCommand(ctx.tools, ctx.tools.redisServer, [join(run, 'redis.conf')], {
      cwd: run,
      timeoutMs: 30_000,
    });
    if (r.code !== 0)
      throw new StackError(`redis-server did not start (exit ${r.code}: ${lastLine(r.output)})${logTail(redisLog)}`);
    const pidOf = async () => {
      const pid = readPidFile(redisPid);
      return pid ? (procRef(pid) ?? undefined) : undefined;
    };
    const ref = await waitFor('redis pid file', 10_000, pidOf, () => logTail(redisLog));
    running(ctx, 'redis', ref, ctx.ports.redis, redisLog);
    const maxclients = await waitFor(
      'redis',
      ctx.waitMs,
      () => maxclientsOf(ctx.ports.redis),
      () => logTail(redisLog),
    );
    if (maxclients !== want)
      ctx.progress(
        `redis: WARNING maxclients is ${maxclients}, not ${want} (Redis lowered it to fit its open-files limit)`,
      );
  });
}

/** `arena stack status` for Redis: connected and blocked clients vs maxclients, and the task queue. */
export async function probeRedis(c: ComponentState): Promise<ProbeResult> {
  const r = new Redis({
    host: c.host,
    port: c.port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectionName: 'arena-stack-status',
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const x = await readRedis(r, QUEUE);
    const sat = {
      connected_clients: x.connected_clients ?? 0,
      blocked_clients: x.blocked_clients ?? 0,
      maxclients: x.maxclients,
      queue_length: x.queue_length ?? 0,
      queue_pending: x.queue_pending ?? 0,
    };
    const summary =
      `clients ${sat.connected_clients} / maxclients ${sat.maxclients ?? '?'} (${pct(sat.connected_clients, sat.maxclients)}, ` +
      `${sat.blocked_clients} blocked); queue ${sat.queue_length} (${sat.queue_pending} in progress)`;
    return { summary, saturation: sat };
  } finally {
    r.disconnect();
  }
}
