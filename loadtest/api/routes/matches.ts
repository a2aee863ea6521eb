/**
 * Match and leaderboard routes (PostgreSQL through PgBouncer, the Redis cache):
 * GET /api/matches?user_id= (a user's matches, newest first; `db_sleep_ms`
 * holds the connection in pg_sleep first, `db_tx` splits that hold over N
 * separate transactions, each its own pool checkout), GET /api/leaderboard (cached in
 * Redis, X-Cache HIT|MISS) and POST /api/matches (a judged match: the match
 * save + ELO update transaction, no LLM call; it drops the cached leaderboard).
 */
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox';
import { leaderboard, listMatches, MAX_DB_TRANSACTIONS, saveMatch } from '../db.js';
import { invalidateLeaderboard, LEADERBOARD_KEY } from '../redis.js';
import type { RouteContext } from './context.js';
import { Id, JudgedMatchBody, SAME_MODELS, sameModels } from './fields.js';

/**
 * GET /api/matches: `limit` 1..100 (default 20), `db_sleep_ms` 0..10000 (default 0), `db_tx` 1..10 (absent: 1,
 * the sleep and the read in one statement; see listMatches).
 */
const ListMatchesSchema = {
  querystring: Type.Object({
    user_id: Id,
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    db_sleep_ms: Type.Integer({ minimum: 0, maximum: 10000, default: 0 }),
    db_tx: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DB_TRANSACTIONS })),
  }),
};

/** GET/POST /api/matches and GET /api/leaderboard. */
export const matchRoutes: FastifyPluginAsyncTypebox<RouteContext> = async (app, { deps }) => {
  const { cfg, pool, redis, metrics } = deps;

  app.get('/api/matches', { schema: ListMatchesSchema }, async (req) => {
    const { user_id, limit, db_sleep_ms, db_tx } = req.query;
    const rows = await listMatches(pool, cfg, user_id, limit, db_sleep_ms, db_tx);
    return { user_id, matches: rows };
  });

  app.get('/api/leaderboard', async (_req, reply) => {
    const cached = await redis.shared.get(LEADERBOARD_KEY).catch(() => null);
    if (cached) {
      reply.header('x-cache', 'HIT');
      return { ...(JSON.parse(cached) as object), cached: true };
    }
    const ttl = cfg.leaderboardCacheTtlSeconds;
    const body = { generated_at: new Date().toISOString(), ttl_seconds: ttl, models: await leaderboard(pool, cfg) };
    await redis.shared.set(LEADERBOARD_KEY, JSON.stringify(body), 'EX', ttl).catch(() => undefined);
    reply.header('x-cache', 'MISS');
    return { ...body, cached: false };
  });

  app.post('/api/matches', { schema: { body: JudgedMatchBody } }, async (req, reply) => {
    const b = req.body;
    if (sameModels(b)) return reply.code(400).send(SAME_MODELS);
    const m = { userId: b.user_id, topic: b.topic, proponentModel: b.proponent_model, opponentModel: b.opponent_model };
    const saved = await saveMatch(pool, cfg, { ...m, winner: b.winner });
    metrics.matchSaveAttempts.observe(saved.attempts);
    await invalidateLeaderboard(redis.shared);
    return reply.code(201).send({ match: saved.match, attempts: saved.attempts });
  });
};
