/**
 * The encoding of a distributed load test's shard results in ConfigMaps (docs/distributed.md): pure
 * functions and constants shared by the runner pods (runner.ts, collect.ts) and the operator's
 * ArenaLoadTest controller. They live here, not in runner.ts, because the
 * operator process must not load runner.ts: it imports @kubernetes/client-node at runtime
 * (operator/kube/import-graph.test.ts).
 *
 * Errors: `DistributedRunError` when a shard does not fit in a ConfigMap; `LoadTestInputError` when a
 * ConfigMap does not hold a valid shard result.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { StartFailureError } from '../../lib/errors.js';
import { LoadTestInputError, parseResult } from '../engine/result-file.js';
import type { LoadTestResult } from '../engine/result-schema.js';

/** The binaryData key of a shard ConfigMap holding the result: gzip-compressed result.json. */
export const SHARD_KEY = 'result.json.gz';
/**
 * The largest encoded shard (bytes of the base64 text in binaryData): 900 KiB,
 * under the 1 MiB limit of a ConfigMap with room for metadata and annotations.
 */
export const MAX_ENCODED_BYTES = 900 * 1024;

/** Annotations a runner writes on its shard ConfigMap. */
export const ANNOTATIONS = {
  /** RFC 3339 time the runner passed its checks and began waiting for the start signal. */
  ready: 'arena.dev/runner-ready',
  /** The shard index (the `i` of --shard i/N). */
  index: 'arena.dev/shard-index',
  /** The result's status: `complete` or `partial`. */
  status: 'arena.dev/shard-status',
  /** Length of the base64 text in binaryData, bytes. */
  encodedBytes: 'arena.dev/encoded-bytes',
  /** Set to `dropped` when the per-second histograms were dropped to fit MAX_ENCODED_BYTES. */
  secondHistograms: 'arena.dev/second-histograms',
} as const;

/** A distributed run that could not go on (deadline, missing or forbidden object, oversize shard): exit 1. */
export class DistributedRunError extends StartFailureError {
  constructor(message: string) {
    super(message, 'ARENA_DISTRIBUTED');
    this.name = 'DistributedRunError';
  }
}

/** An encoded shard: the base64 text of gzip(JSON) and whether per-second histograms were dropped. */
export interface EncodedShard {
  /** base64 of the gzip-compressed result.json (the value of binaryData[SHARD_KEY]). */
  data: string;
  /** True when the per-second `hdr` strings were removed to fit MAX_ENCODED_BYTES. */
  droppedSecondHistograms: boolean;
}

const gz = (r: LoadTestResult) => gzipSync(Buffer.from(JSON.stringify(r), 'utf8'), { level: 9 }).toString('base64');

/** A copy of the result without the per-second histograms (series[*].{all,scenarios[*]}.trends[*].hdr). */
function withoutSecondHistograms(result: LoadTestResult): LoadTestResult {
  const r = structuredClone(result);
  for (const s of r.series) {
    for (const t of Object.values(s.all.trends)) delete t.hdr;
    for (const sc of Object.values(s.scenarios)) for (const t of Object.values(sc.trends)) delete t.hdr;
  }
  return r;
}

/**
 * A shard result as ConfigMap binaryData: JSON, gzip, base64, keeping everything
 * the merge needs (steady histograms, counters, per-second series). When that
 * exceeds `maxBytes` (default MAX_ENCODED_BYTES, 900 KiB) the per-second `hdr`
 * strings are dropped (merge.ts then takes per-second percentiles as an upper
 * bound); the steady histograms are always kept.
 * @throws DistributedRunError when even without them it exceeds `maxBytes`.
 */
export function encodeShardDetailed(result: LoadTestResult, maxBytes = MAX_ENCODED_BYTES): EncodedShard {
  const full = gz(result);
  if (full.length <= maxBytes) return { data: full, droppedSecondHistograms: false };
  const slim = gz(withoutSecondHistograms(result));
  if (slim.length <= maxBytes) return { data: slim, droppedSecondHistograms: true };
  throw new DistributedRunError(
    `the shard result is ${slim.length} bytes encoded even without per-second histograms, over the ${maxBytes}-byte ConfigMap bound`,
  );
}

/** encodeShardDetailed(result).data: the base64 text of gzip(result.json). @throws DistributedRunError (see there). */
export function encodeShard(result: LoadTestResult): string {
  return encodeShardDetailed(result).data;
}

/**
 * Decode a shard (base64 of gzip(result.json), as encodeShard gives) and check it
 * against the result.json schema. `where` names the source in errors.
 * @throws LoadTestInputError naming `where` when it is not gzip, not JSON or not a valid result.
 */
export function decodeShard(s: string, where = 'shard'): LoadTestResult {
  let text: string;
  try {
    text = gunzipSync(Buffer.from(s, 'base64')).toString('utf8');
  } catch (e) {
    throw new LoadTestInputError(`${where}: not a gzip-compressed result.json (${(e as Error).message})`);
  }
  return parseResult(text, where);
}

/** The shard result in a ConfigMap (binaryData[SHARD_KEY], else data[SHARD_KEY]). @throws LoadTestInputError when absent or invalid. */
export function shardFromConfigMap(cm: V1ConfigMap): LoadTestResult {
  const where = `ConfigMap ${cm.metadata?.namespace ?? ''}/${cm.metadata?.name ?? ''}`;
  const s = cm.binaryData?.[SHARD_KEY] ?? cm.data?.[SHARD_KEY];
  if (s === undefined) throw new LoadTestInputError(`${where}: no ${SHARD_KEY} (the runner has not published)`);
  return decodeShard(s, where);
}
