/**
 * `arena loadtest collect NAME`'s apiserver side: read an ArenaLoadTest and the
 * merged result the operator wrote into the ConfigMap named in
 * `status.summary.resultConfigMap` (binaryData `result.json.gz`, gzip + base64,
 * the shard encoding of runner.ts). Needs `get` on both.
 */
import * as k8s from '@kubernetes/client-node';
import type { ArenaLoadTestStatus } from '../../operator/api/v1alpha1/loadtest-schema.js';
import type { LoadTestResult } from '../engine/result-schema.js';
import { errorLine, LOADTEST_GROUP, LOADTEST_PLURAL, LOADTEST_VERSION } from './runner.js';
import { DistributedRunError, shardFromConfigMap } from './shard.js';

/** What collect found: the ArenaLoadTest's status and its merged result. */
export interface Collected {
  status: ArenaLoadTestStatus;
  result: LoadTestResult;
}

/**
 * Read the ArenaLoadTest `namespace/name` and its merged result.
 * @throws DistributedRunError (exit 1) naming the object when the ArenaLoadTest or its result
 *   ConfigMap cannot be read, or when the test has no merged result yet (its phase is given).
 */
export async function collectMergedResult(kc: k8s.KubeConfig, namespace: string, name: string): Promise<Collected> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let lt: { status?: ArenaLoadTestStatus };
  try {
    lt = (await custom.getNamespacedCustomObject({
      group: LOADTEST_GROUP,
      version: LOADTEST_VERSION,
      namespace,
      plural: LOADTEST_PLURAL,
      name,
    })) as { status?: ArenaLoadTestStatus };
  } catch (e) {
    throw new DistributedRunError(`ArenaLoadTest ${namespace}/${name}: ${errorLine(e)}`);
  }
  const status = lt.status ?? {};
  const cmName = status.summary?.resultConfigMap;
  if (!cmName) {
    const why = status.conditions?.find((c) => c.type === 'Completed')?.message;
    throw new DistributedRunError(
      `ArenaLoadTest ${namespace}/${name} has no merged result yet (phase ${status.phase ?? 'none'}${why ? `: ${why}` : ''})`,
    );
  }
  let cm: k8s.V1ConfigMap;
  try {
    cm = await core.readNamespacedConfigMap({ namespace, name: cmName });
  } catch (e) {
    throw new DistributedRunError(`ConfigMap ${namespace}/${cmName} (the merged result of ${name}): ${errorLine(e)}`);
  }
  return { status, result: shardFromConfigMap(cm) };
}
