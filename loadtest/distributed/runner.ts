/**
 * The runner side of a distributed load test (an ArenaLoadTest, docs/distributed.md):
 * the pure shard encoding for a ConfigMap (`encodeShard` / `decodeShard`, in
 * operator/controller/shard.ts, re-exported here) and the apiserver I/O of one
 * runner pod with @kubernetes/client-node:
 *
 * 1. `markRunnerReady`: annotate its own shard ConfigMap `arena.dev/runner-ready`;
 * 2. `waitForStartSignal`: poll its ArenaLoadTest until `status.startAt` is set;
 * 3. `publishShard`: write its shard result into its own shard ConfigMap.
 *
 * Everything needs only what the rendered runner Role grants: `get` on the
 * ArenaLoadTest, `get`/`update`/`patch` on the (pre-created) shard ConfigMap.
 *
 * Errors: `DistributedRunError` (a StartFailureError: the CLI exits 1) when the
 * start deadline passes, the ArenaLoadTest or ConfigMap is missing or forbidden,
 * or the shard does not fit in a ConfigMap; `LoadTestInputError` when a
 * ConfigMap does not hold a valid shard result.
 */
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { InvalidInputError } from '../../lib/errors.js';
import { sleep } from '../../lib/util.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { ANNOTATIONS, DistributedRunError, SHARD_KEY, encodeShardDetailed, type EncodedShard } from './shard.js';

// The shard encoding (pure, and needed by the operator without client-node) is in shard.ts.

/** The API group and version of ArenaLoadTest. */
export const LOADTEST_GROUP = 'arena.dev';
export const LOADTEST_VERSION = 'v1alpha1';
export const LOADTEST_PLURAL = 'arenaloadtests';

/** The HTTP status of a client-node error, or undefined. */
const statusOf = (e: unknown): number | undefined => (e instanceof k8s.ApiException ? e.code : undefined);

/** One line for a client-node error: the status and the apiserver's message (else the error's message). */
export function errorLine(e: unknown): string {
  if (e instanceof k8s.ApiException) {
    let msg = '';
    try {
      msg = (JSON.parse(String(e.body)) as { message?: string }).message ?? '';
    } catch {
      msg = String(e.body ?? '');
    }
    return `HTTP ${e.code}${msg ? `: ${msg}` : ''}`;
  }
  return (e as Error).message ?? String(e);
}

/**
 * A kubeconfig: `file` when given, else in-cluster when KUBERNETES_SERVICE_HOST is
 * set (the pod's ServiceAccount token), else the default (KUBECONFIG, ~/.kube/config).
 * @throws InvalidInputError naming --kubeconfig when it cannot be loaded or has no cluster.
 */
export function runnerKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else if (process.env['KUBERNETES_SERVICE_HOST']) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (e) {
    throw new InvalidInputError(`--kubeconfig: cannot load ${file ?? 'the kubeconfig'}: ${(e as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new InvalidInputError('--kubeconfig: no cluster in the kubeconfig');
  return kc;
}

/** Where a pod's namespace is mounted with its ServiceAccount token. */
export const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The runner's namespace: the pod's (SA_NAMESPACE_FILE), else $POD_NAMESPACE, else `default`. */
export function podNamespace(file = SA_NAMESPACE_FILE): string {
  try {
    const ns = readFileSync(file, 'utf8').trim();
    if (ns) return ns;
  } catch {
    // not in a pod
  }
  return process.env['POD_NAMESPACE'] || 'default';
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/**
 * Mark the runner ready: merge-patch annotation `arena.dev/runner-ready: <RFC 3339 now>`
 * onto its (pre-created) shard ConfigMap, so the operator can see every runner is
 * ready before it sets status.startAt. Needs `patch` on that ConfigMap.
 * @returns the time written, RFC 3339.
 * @throws DistributedRunError naming the ConfigMap when the patch fails.
 */
export async function markRunnerReady(kc: k8s.KubeConfig, namespace: string, configMapName: string): Promise<string> {
  const at = new Date().toISOString();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.patchNamespacedConfigMap(
      { name: configMapName, namespace, body: { metadata: { annotations: { [ANNOTATIONS.ready]: at } } } },
      mergePatch,
    );
  } catch (e) {
    throw new DistributedRunError(
      `--publish-configmap: cannot mark ConfigMap ${namespace}/${configMapName} ready: ${errorLine(e)}`,
    );
  }
  return at;
}

/**
 * Wait for the start signal: GET arenaloadtests/<name> (arena.dev/v1alpha1) once a
 * second until `status.startAt` (RFC 3339) is set.
 * @param deadlineMs how long to wait, ms.
 * @returns status.startAt as epoch ms.
 * @throws DistributedRunError naming the ArenaLoadTest when `deadlineMs` passes (with the
 * last error, if any), when it does not exist (404) or may not be read (401/403), when
 * status.startAt is not a time, or when `signal` aborts.
 */
export async function waitForStartSignal(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<number> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const what = `ArenaLoadTest ${namespace}/${name}`;
  const end = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    if (signal?.aborted) throw new DistributedRunError(`--start-at-from: stopped waiting for ${what} status.startAt`);
    try {
      const obj = (await custom.getNamespacedCustomObject({
        group: LOADTEST_GROUP,
        version: LOADTEST_VERSION,
        namespace,
        plural: LOADTEST_PLURAL,
        name,
      })) as { status?: { startAt?: unknown } };
      const s = obj.status?.startAt;
      if (s !== undefined && s !== null && s !== '') {
        const t = typeof s === 'string' ? Date.parse(s) : NaN;
        if (!Number.isFinite(t))
          throw new DistributedRunError(`--start-at-from: ${what} status.startAt is not a time: ${JSON.stringify(s)}`);
        return t;
      }
      last = '';
    } catch (e) {
      if (e instanceof DistributedRunError) throw e;
      const code = statusOf(e);
      if (code === 404 || code === 401 || code === 403)
        throw new DistributedRunError(`--start-at-from: cannot read ${what}: ${errorLine(e)}`);
      last = errorLine(e);
    }
    const left = end - Date.now();
    if (left <= 0)
      throw new DistributedRunError(
        `--start-deadline: ${what} had no status.startAt within ${Math.round(deadlineMs / 1000)} s${last ? ` (last error: ${last})` : ''}`,
      );
    await sleep(Math.min(1000, left), signal).catch(() => undefined);
  }
}

/**
 * Publish a shard result into its pre-created ConfigMap: read it, set
 * binaryData[SHARD_KEY] (encodeShard) and the annotations `arena.dev/shard-index`,
 * `arena.dev/shard-status`, `arena.dev/encoded-bytes` (and `arena.dev/second-histograms:
 * dropped` when they were dropped), then update it (optimistic concurrency: retried on
 * a conflict). Needs `get` and `update` on that ConfigMap only.
 * @returns the encoded shard.
 * @throws DistributedRunError naming the ConfigMap when it cannot be read or updated, or the shard does not fit.
 */
export async function publishShard(
  kc: k8s.KubeConfig,
  namespace: string,
  configMapName: string,
  result: LoadTestResult,
): Promise<EncodedShard> {
  const enc = encodeShardDetailed(result);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const what = `ConfigMap ${namespace}/${configMapName}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const cm = await core.readNamespacedConfigMap({ name: configMapName, namespace });
      const annotations = { ...(cm.metadata?.annotations ?? {}) };
      annotations[ANNOTATIONS.index] = String(result.settings.shard?.index ?? 0);
      annotations[ANNOTATIONS.status] = result.status;
      annotations[ANNOTATIONS.encodedBytes] = String(enc.data.length);
      if (enc.droppedSecondHistograms) annotations[ANNOTATIONS.secondHistograms] = 'dropped';
      else delete annotations[ANNOTATIONS.secondHistograms];
      const body: k8s.V1ConfigMap = {
        ...cm,
        metadata: { ...cm.metadata, annotations },
        binaryData: { ...(cm.binaryData ?? {}), [SHARD_KEY]: enc.data },
      };
      await core.replaceNamespacedConfigMap({ name: configMapName, namespace, body });
      return enc;
    } catch (e) {
      if (statusOf(e) === 409 && attempt < 5) continue;
      throw new DistributedRunError(`--publish-configmap: cannot publish to ${what}: ${errorLine(e)}`);
    }
  }
}
