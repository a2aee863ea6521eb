/**
 * TypeBox schemas of the request fields several routes share (identifiers,
 * models, the latency override, the match bodies). They compile to the JSON
 * Schema fastify's Ajv validates with (so a bad field is a 400 bad_request
 * naming it) and give the handlers their types.
 */
import { Type } from '@sinclair/typebox';
import type { Winner } from '../elo.js';
import { MAX_LATENCY_OVERRIDE_MS } from '../llm.js';

/** `user_id`, `session_id`. */
export const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$' });
/** `proponent_model`, `opponent_model`. */
export const Model = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$' });
/** `llm_latency_ms`: replaces the sampled latency of the call (tests and load tests hold a slot for a known time). */
export const LatencyOverride = Type.Integer({ minimum: 0, maximum: MAX_LATENCY_OVERRIDE_MS });
/** `winner`: a plain string enum (one Ajv error, "must be equal to one of the allowed values"). */
export const WinnerField = Type.Unsafe<Winner>({ type: 'string', enum: ['proponent', 'opponent', 'draw'] });

const matchFields = {
  user_id: Id,
  topic: Type.String({ minLength: 1, maxLength: 500 }),
  proponent_model: Model,
  opponent_model: Model,
};

/** Body of POST /api/matches: a judged match (`winner` required). */
export const JudgedMatchBody = Type.Object({
  ...matchFields,
  winner: WinnerField,
  llm_latency_ms: Type.Optional(LatencyOverride),
});

/** Body of POST /api/tournament/match/stream: the simulated judge picks the winner unless one is given. */
export const DebateBody = Type.Object({
  ...matchFields,
  winner: Type.Optional(WinnerField),
  llm_latency_ms: Type.Optional(LatencyOverride),
});

/** The 400 answer when both sides of a match are the same model. */
export const SAME_MODELS = { error: 'bad_request', message: 'proponent_model and opponent_model must differ' } as const;

/** True when a match body pits a model against itself (answer SAME_MODELS). */
export const sameModels = (b: { proponent_model: string; opponent_model: string }): boolean =>
  b.proponent_model === b.opponent_model;
