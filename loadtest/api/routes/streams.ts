/**
 * The SSE streams, guarded by the LLM semaphore and the provider limit
 * (llm-session.ts): POST /chat/stream (a chat answer, token by token) and
 * POST /api/tournament/match/stream (a debate: one LLM call whose tokens are
 * split over four turns, then the judged match is saved, without holding the
 * LLM slot, and sent as `event: match`).
 */
import { randomUUID } from 'node:crypto';
import { type FastifyPluginAsyncTypebox, type Static, Type } from '@fastify/type-provider-typebox';
import { DbPoolTimeoutError, DbUnavailableError, saveMatch } from '../db.js';
import type { Winner } from '../elo.js';
import type { LlmResult } from '../llm.js';
import { invalidateLeaderboard } from '../redis.js';
import type { AppDeps, RouteContext } from './context.js';
import { DebateBody, Id, LatencyOverride, SAME_MODELS, sameModels } from './fields.js';
import { type LlmSession, reportLlmFailure, runLlmSession, type SseWriter } from './llm-session.js';

/** Body of POST /chat/stream. */
const ChatBody = Type.Object({
  question: Type.String({ minLength: 1, maxLength: 4000 }),
  session_id: Type.Optional(Id),
  llm_latency_ms: Type.Optional(LatencyOverride),
});

/** Turns of a debate: proponent, opponent, proponent, opponent. */
const TURNS = 4;

/** The simulated judge: 45 % proponent, 45 % opponent, 10 % draw. */
const judge = (r = Math.random()): Winner => (r < 0.1 ? 'draw' : r < 0.55 ? 'proponent' : 'opponent');

/** The chat stream: `event: start`, a `data:` event per token, `event: done`. */
async function chat({ deps }: RouteContext, b: Static<typeof ChatBody>, { signal, sse }: LlmSession): Promise<void> {
  const sessionId = b.session_id ?? randomUUID();
  sse.send({ type: 'start', session_id: sessionId, worker_pid: process.pid }, 'start');
  try {
    const onToken = (text: string, index: number) => sse.send({ type: 'token', index, text });
    const r = await deps.llm.generate({ latencyMs: b.llm_latency_ms, signal, onToken });
    deps.metrics.llmCalls.inc({ outcome: 'ok' });
    sse.send({ type: 'done', session_id: sessionId, tokens: r.tokens, latency_ms: r.latencyMs }, 'done');
  } catch (e) {
    if (!reportLlmFailure(e, deps.metrics, sse)) throw e;
  }
  sse.end();
}

/** Save the judged debate and send `event: match`, or `event: error` when it cannot be saved. */
async function saveVerdict(
  deps: AppDeps,
  b: Static<typeof DebateBody>,
  winner: Winner,
  result: LlmResult,
  sse: SseWriter,
): Promise<void> {
  const { cfg, pool, redis, metrics } = deps;
  try {
    const m = { userId: b.user_id, topic: b.topic, proponentModel: b.proponent_model, opponentModel: b.opponent_model };
    const saved = await saveMatch(pool, cfg, { ...m, winner, tokens: result.tokens, llmLatencyMs: result.latencyMs });
    metrics.matchSaveAttempts.observe(saved.attempts);
    await invalidateLeaderboard(redis.shared);
    sse.send({ type: 'match', match: saved.match, attempts: saved.attempts }, 'match');
  } catch (e) {
    if (e instanceof DbPoolTimeoutError) return sse.send({ error: 'db_pool_timeout', message: e.message }, 'error');
    if (e instanceof DbUnavailableError) return sse.send({ error: 'db_unavailable', message: e.message }, 'error');
    process.stderr.write(`[http] match save failed: ${(e as Error).stack}\n`);
    sse.send({ error: 'internal', message: 'match could not be saved' }, 'error');
  }
}

/** The debate stream: `event: start`, tokens by speaker and turn, then the saved match (nothing is saved for a client that left). */
async function debate({ deps }: RouteContext, b: Static<typeof DebateBody>, session: LlmSession): Promise<void> {
  const { signal, sse } = session;
  const start = { type: 'start', topic: b.topic, proponent_model: b.proponent_model, opponent_model: b.opponent_model };
  sse.send({ ...start, worker_pid: process.pid }, 'start');
  let result: LlmResult;
  try {
    result = await deps.llm.generate({
      latencyMs: b.llm_latency_ms,
      signal,
      onToken: (text, index, total) => {
        const turn = Math.min(TURNS - 1, Math.floor((index * TURNS) / total));
        sse.send({ type: 'token', speaker: turn % 2 === 0 ? 'proponent' : 'opponent', turn: turn + 1, index, text });
      },
    });
    deps.metrics.llmCalls.inc({ outcome: 'ok' });
  } catch (e) {
    if (!reportLlmFailure(e, deps.metrics, sse)) throw e;
    sse.end(); // the call failed or the client left: nothing is saved
    return;
  }
  session.release(); // the judge's verdict is saved without holding the LLM slot
  if (signal.aborted) return;
  await saveVerdict(deps, b, b.winner ?? judge(), result, sse);
  sse.end();
}

/** POST /chat/stream and POST /api/tournament/match/stream. */
export const streamRoutes: FastifyPluginAsyncTypebox<RouteContext> = async (app, ctx) => {
  app.post('/chat/stream', { schema: { body: ChatBody } }, async (req, reply) => {
    await runLlmSession(ctx, reply, (s) => chat(ctx, req.body, s));
    return reply;
  });

  app.post('/api/tournament/match/stream', { schema: { body: DebateBody } }, async (req, reply) => {
    if (sameModels(req.body)) return reply.code(400).send(SAME_MODELS);
    await runLlmSession(ctx, reply, (s) => debate(ctx, req.body, s));
    return reply;
  });
};
