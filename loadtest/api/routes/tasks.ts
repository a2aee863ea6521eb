/**
 * The async LLM task routes (Redis Streams queue, loadtest/api/queue.ts):
 * POST /api/llmchat/prompts/{scene}/api queues a task (202 + Location), or
 * with `?sync=true` waits for it (200 done, 502 failed, 504 after
 * TASK_SYNC_TIMEOUT_SECONDS; a client that leaves while waiting gets no
 * answer); GET /api/llmchat/tasks/{task_id} reads it (404 unknown or expired).
 */
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox';
import { enqueueTask, getTask, waitForTask } from '../queue.js';
import type { RouteContext } from './context.js';
import { abortOnClose } from './llm-session.js';
import { Id, LatencyOverride } from './fields.js';

/** POST /api/llmchat/prompts/{scene}/api[?sync=true]. */
const SubmitTaskSchema = {
  params: Type.Object({ scene: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }) }),
  querystring: Type.Object({ sync: Type.Boolean({ default: false }) }),
  body: Type.Object({
    prompt: Type.String({ minLength: 1, maxLength: 8000 }),
    user_id: Type.Optional(Id),
    llm_latency_ms: Type.Optional(LatencyOverride),
  }),
};

/** GET /api/llmchat/tasks/{task_id}: a UUID. */
const GetTaskSchema = {
  params: Type.Object({
    task_id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }),
  }),
};

/** The task submission and status routes. */
export const taskRoutes: FastifyPluginAsyncTypebox<RouteContext> = async (app, { deps }) => {
  const { cfg, redis } = deps;

  app.post('/api/llmchat/prompts/:scene/api', { schema: SubmitTaskSchema }, async (req, reply) => {
    const task = {
      scene: req.params.scene,
      prompt: req.body.prompt,
      userId: req.body.user_id,
      latencyMs: req.body.llm_latency_ms,
    };
    const id = await enqueueTask(redis.shared, task, cfg.taskResultTtlSeconds);
    const statusUrl = `/api/llmchat/tasks/${id}`;
    if (!req.query.sync) {
      return reply
        .code(202)
        .header('location', statusUrl)
        .send({ task_id: id, status: 'queued', status_url: statusUrl });
    }
    const ac = abortOnClose(reply.raw);
    const v = await waitForTask(redis, id, cfg.taskSyncTimeoutSeconds * 1000, ac.signal).catch((e) => {
      if (ac.signal.aborted) return null;
      throw e;
    });
    if (ac.signal.aborted) {
      reply.hijack();
      reply.raw.destroy();
      return reply;
    }
    if (v && v.status === 'done') return reply.code(200).send(v);
    if (v && v.status === 'failed') return reply.code(502).send({ ...v, error: v.error ?? 'llm_error' });
    const message = `task not finished within ${cfg.taskSyncTimeoutSeconds} s; poll ${statusUrl}`;
    return reply.code(504).send({ error: 'task_timeout', message, task_id: id, status_url: statusUrl });
  });

  app.get('/api/llmchat/tasks/:task_id', { schema: GetTaskSchema }, async (req, reply) => {
    const v = await getTask(redis.shared, req.params.task_id);
    if (!v) {
      const message = `no task ${req.params.task_id} (unknown, or expired after ${cfg.taskResultTtlSeconds} s)`;
      return reply.code(404).send({ error: 'not_found', message });
    }
    return v;
  });
};
