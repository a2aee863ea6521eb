/**
 * The simulated LLM provider: lognormal latency through LLM_LATENCY_P50_MS and
 * LLM_LATENCY_P99_MS (sigma = ln(p99/p50) / 2.3263, the planner's model in
 * operator/planner/latency.ts), tokens streamed evenly over the call at
 * LLM_TOKENS_PER_SECOND, a failure rate LLM_ERROR_RATE, and the provider's
 * LLM_REQUESTS_PER_MINUTE limit enforced across every process through Redis.
 */
import type { Redis } from 'ioredis';
import { sleep } from '../../lib/util.js';
import { lognormalFromPercentiles } from '../../operator/planner/latency.js';
import type { ApiConfig } from './config.js';
import { LLM_GCRA_KEY } from './redis.js';
import { AbortedError } from './semaphore.js';

/** The provider failed the call (simulated by LLM_ERROR_RATE). */
export class LlmError extends Error {
  constructor(readonly afterMs: number) {
    super(`simulated LLM provider error after ${Math.round(afterMs)} ms`);
    this.name = 'LlmError';
  }
}

/** The provider's RPM limit would make this call wait longer than allowed. */
export class LlmRateLimitedError extends Error {
  constructor(
    readonly requestsPerMinute: number,
    readonly maxWaitMs: number,
  ) {
    super(
      `LLM provider limit of ${requestsPerMinute} requests/min reached: the next free call is more than ${maxWaitMs / 1000} s away`,
    );
    this.name = 'LlmRateLimitedError';
  }
}

/** The longest wait for a provider permit before LlmRateLimitedError, ms. */
export const MAX_PERMIT_WAIT_MS = 60_000;
/** Sampled latencies are capped at this multiple of p99 (the lognormal tail is unbounded). */
export const LATENCY_CAP_FACTOR = 5;
/** Largest `llm_latency_ms` a request may ask for, ms. */
export const MAX_LATENCY_OVERRIDE_MS = 600_000;

const WORDS = (
  'the argument rests on evidence that the opposing side has not addressed because cost and benefit ' +
  'must be weighed against risk while history shows a clear pattern of outcomes in favour of careful ' +
  'reform therefore we conclude that the motion should stand although reasonable people may disagree'
).split(' ');

/** A standard normal variate (Box-Muller). */
function gaussian(rng: () => number): number {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** lib/util's sleep, but an abort (before or during the wait) rejects with AbortedError: the callers unwind on it. */
async function sleepOrAbort(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw new AbortedError();
  await sleep(ms, signal);
  if (signal?.aborted) throw new AbortedError();
}

/** Result of one simulated call. */
export interface LlmResult {
  text: string;
  tokens: number;
  latencyMs: number;
}

/** Options of one simulated call (SimulatedLlm.generate). */
export interface GenerateOptions {
  /** Use this latency instead of sampling one (ms). */
  latencyMs?: number;
  signal?: AbortSignal;
  /** Called for each token as it is produced (index from 0, of `total`). */
  onToken?: (text: string, index: number, total: number) => void;
}

/** The simulated provider. One per process. */
export class SimulatedLlm {
  private readonly mu: number;
  private readonly sigma: number;

  /**
   * @param cfg the `llm` part of the API configuration.
   * @param redis shared connection for the RPM limiter (ignored when requestsPerMinute is null).
   * @param rng uniform [0, 1) source (tests pass a seeded one).
   */
  constructor(
    private readonly cfg: ApiConfig['llm'],
    private readonly redis: Redis | null,
    private readonly rng: () => number = Math.random,
  ) {
    const m = lognormalFromPercentiles(cfg.p50Ms, cfg.p99Ms);
    this.mu = Math.log(cfg.p50Ms);
    this.sigma = m.sigma;
  }

  /** One latency draw, ms: exp(mu + sigma Z), capped at LATENCY_CAP_FACTOR x p99. */
  sampleLatencyMs(): number {
    if (this.sigma === 0) return this.cfg.p50Ms;
    const x = Math.exp(this.mu + this.sigma * gaussian(this.rng));
    return Math.min(x, LATENCY_CAP_FACTOR * this.cfg.p99Ms);
  }

  /**
   * Wait for a provider permit (global RPM limit through Redis GCRA).
   * @returns the time waited, ms (0 without a limit).
   * @throws LlmRateLimitedError when the wait would exceed MAX_PERMIT_WAIT_MS; AbortedError.
   */
  async reservePermit(signal?: AbortSignal): Promise<number> {
    const rpm = this.cfg.requestsPerMinute;
    if (rpm === null || !this.redis) return 0;
    const wait = await this.redis.arenaGcra(LLM_GCRA_KEY, 60_000 / rpm, MAX_PERMIT_WAIT_MS);
    if (wait < 0) throw new LlmRateLimitedError(rpm, MAX_PERMIT_WAIT_MS);
    if (wait > 0) await sleepOrAbort(wait, signal);
    return wait;
  }

  /**
   * Produce a completion: max(1, round(latency s x tokens/s)) tokens, token i
   * of n at latency x (i+1)/n. With probability LLM_ERROR_RATE the call fails
   * at a uniform point of its duration.
   * @throws LlmError (simulated failure), AbortedError (signal).
   */
  async generate(opts: GenerateOptions = {}): Promise<LlmResult> {
    const latency = opts.latencyMs ?? this.sampleLatencyMs();
    const total = Math.max(1, Math.round((latency / 1000) * this.cfg.tokensPerSecond));
    const failAt = this.rng() < this.cfg.errorRate ? this.rng() * latency : Infinity;
    const started = Date.now();
    const parts: string[] = [];
    for (let i = 0; i < total; i++) {
      const due = (latency * (i + 1)) / total;
      if (due > failAt) {
        await sleepOrAbort(Math.max(0, failAt - (Date.now() - started)), opts.signal);
        throw new LlmError(failAt);
      }
      const wait = due - (Date.now() - started);
      if (wait > 0) await sleepOrAbort(wait, opts.signal);
      else if (opts.signal?.aborted) throw new AbortedError();
      const word = WORDS[Math.floor(this.rng() * WORDS.length)]!;
      const text = i === 0 ? word : ` ${word}`;
      parts.push(text);
      opts.onToken?.(text, i, total);
    }
    return { text: parts.join(''), tokens: total, latencyMs: Date.now() - started };
  }
}
