/**
 * The LLM endpoints' session: count it in `active_sessions`, take an LLM slot
 * and a provider permit before the response starts (so a refusal is a plain
 * JSON 503), then stream Server-Sent Events on the raw socket. A client that
 * disconnects aborts the session at once: its slot is freed, and a client
 * that left while waiting gets its socket destroyed (nothing is answered).
 */
import type { ServerResponse } from 'node:http';
import { LlmError, LlmRateLimitedError } from '../llm.js';
import type { Metrics } from '../metrics.js';
import { AbortedError } from '../semaphore.js';
import type { AppDeps, RouteContext } from './context.js';

/** The part of a fastify reply the session uses (the raw response, taken over with hijack()). */
export interface RawReply {
  hijack(): unknown;
  readonly raw: ServerResponse;
}

/** Abort when the client goes away before the response is complete. */
export function abortOnClose(res: ServerResponse): AbortController {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac;
}

/** An open SSE response. */
export interface SseWriter {
  /** One event: `data: <json>`, preceded by `event: <name>` when named (dropped once the response ended). */
  send(data: unknown, event?: string): void;
  end(): void;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Start an SSE response on the raw socket (fastify no longer manages the reply). */
export function startSse(reply: RawReply): SseWriter {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, SSE_HEADERS);
  return {
    send(data, event) {
      if (!res.writableEnded && !res.destroyed)
        res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (!res.writableEnded) res.end();
    },
  };
}

/**
 * Acquire an LLM slot and a provider permit, before the response starts (so
 * failures are plain JSON errors: SlotTimeoutError and LlmRateLimitedError are thrown).
 * @returns the release function, or null when the client went away (its socket is destroyed).
 */
export async function llmAdmission(deps: AppDeps, reply: RawReply, signal: AbortSignal): Promise<(() => void) | null> {
  const { cfg, slots, llm, metrics } = deps;
  let release: (() => void) | undefined;
  try {
    const asked = performance.now();
    try {
      release = await slots.acquire(cfg.slotWaitTimeoutSeconds * 1000, signal);
    } finally {
      metrics.llmSlotWait.observe((performance.now() - asked) / 1000);
    }
    const waited = await llm.reservePermit(signal);
    metrics.llmPermitWait.observe(waited / 1000);
    return release;
  } catch (e) {
    release?.();
    if (e instanceof AbortedError) {
      reply.hijack();
      reply.raw.destroy();
      return null;
    }
    if (e instanceof LlmRateLimitedError) metrics.llmCalls.inc({ outcome: 'rate_limited' });
    throw e;
  }
}

/** An admitted session, as its body sees it. */
export interface LlmSession {
  /** Aborts when the client disconnects. */
  signal: AbortSignal;
  sse: SseWriter;
  /** Free the LLM slot now (idempotent; otherwise it is freed when the body returns). */
  release(): void;
}

/**
 * Run `body` as an LLM session of this request: counted in active_sessions
 * from the wait for a slot until `body` returns; the SSE response starts once
 * admitted. `body` ends the stream itself.
 */
export async function runLlmSession(
  ctx: RouteContext,
  reply: RawReply,
  body: (s: LlmSession) => Promise<void>,
): Promise<void> {
  const ac = abortOnClose(reply.raw);
  ctx.gauges.activeSessions++;
  let release: (() => void) | null = null;
  try {
    release = await llmAdmission(ctx.deps, reply, ac.signal);
    if (!release) return;
    const sse = startSse(reply);
    await body({
      signal: ac.signal,
      sse,
      release: () => {
        release?.();
        release = null;
      },
    });
  } finally {
    release?.();
    ctx.gauges.activeSessions--;
  }
}

/**
 * After a failed LLM call inside a stream: count it and, for a provider error,
 * send `event: error` (`llm_error`).
 * @returns false when `e` is not an LLM failure (the caller rethrows it).
 */
export function reportLlmFailure(e: unknown, metrics: Metrics, sse: SseWriter): boolean {
  if (e instanceof AbortedError) {
    metrics.llmCalls.inc({ outcome: 'aborted' });
    return true;
  }
  if (e instanceof LlmError) {
    metrics.llmCalls.inc({ outcome: 'error' });
    sse.send({ error: 'llm_error', message: e.message }, 'error');
    return true;
  }
  return false;
}
