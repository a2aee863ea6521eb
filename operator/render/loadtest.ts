/**
 * renderLoadTest(): ArenaLoadTest -> the Kubernetes objects the operator will
 * apply for it (docs/distributed.md), in apply order:
 *
 * 1. ConfigMap `<name>-runner`: the runners' input files, `arenadeployment.yaml`
 *    (target.deploymentRef: the ArenaDeployment, for `-f` and `--from-plan`),
 *    `scenario.yaml` (scenario.bundled: the bundled file's text; `mixed` with a
 *    deploymentRef is that ArenaDeployment's requestMix, as `--scenario mixed -f`
 *    does) and `thresholds.yaml`; not rendered when there is none of them
 *    (a URL target, a scenario.configMapRef and no thresholds);
 * 2. ConfigMaps `<name>-shard-<i>`, i = 0..N-1, created empty: runner i writes
 *    its readiness and then its shard result into its own one (so the runners'
 *    Role needs no `create` and names every ConfigMap it may touch);
 * 3. ServiceAccount, Role and RoleBinding `<name>-runner` (least privilege:
 *    `get` on this ArenaLoadTest only, for the start signal `status.startAt`;
 *    `get`/`update`/`patch` on the N shard ConfigMaps only);
 * 4. the Indexed Job `<name>-runner` (completions = parallelism = N,
 *    backoffLimitPerIndex 0, restartPolicy Never), each pod running
 *    `arena loadtest run ... --shard $(JOB_COMPLETION_INDEX)/N --start-at-from <name>
 *    --publish-configmap <name>-shard-$(JOB_COMPLETION_INDEX)`.
 *
 * Every object carries the ArenaLoadTest as controlling ownerReference (deleting
 * it stops and removes the runners) and the arena labels. Pure and
 * deterministic: the same input gives the same objects, key order included
 * (loadTestDeps() is the one function here that reads a file).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IVolumeProjection } from 'kubernetes-models/v1/VolumeProjection';
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import { InvalidInputError } from '../../lib/errors.js';
import { parseDurationMs } from '../../loadtest/engine/duration.js';
import { fromRequestMix, SCENARIO_DIR } from '../../loadtest/engine/scenario.js';
import { API_VERSION, type ArenaDeployment } from '../api/v1alpha1/schema.js';
import { LOADTEST_KIND, type ArenaLoadTest } from '../api/v1alpha1/loadtest-schema.js';
import type { KubeObject } from './index.js';
import { MANAGED_BY, objectName } from './names.js';
import { containerSecurityContext, podSecurityContext } from './security.js';

/** Label on every object of one ArenaLoadTest: its name. */
export const LOADTEST_LABEL = 'arena.dev/loadtest';
/** Label on a shard ConfigMap: the shard index (JOB_COMPLETION_INDEX). */
export const SHARD_LABEL = 'arena.dev/shard';
/** Where the runner container sees its input files (a projected volume). */
export const INPUT_DIR = '/etc/arena/input';
/** Where the runner writes its own result.json before publishing it (an emptyDir). */
export const RESULT_DIR = '/tmp/result';
/** Extra seconds of the Job's activeDeadlineSeconds beyond start deadline + schedule: publishing and exit. */
export const JOB_DEADLINE_MARGIN_SECONDS = 300;
/** Runner resources when spec.runner.resources is not set. */
export const DEFAULT_RUNNER_RESOURCES: IResourceRequirements = {
  requests: { cpu: '1', memory: '512Mi' },
  limits: { memory: '1Gi' },
};

/** What renderLoadTest needs beyond the ArenaLoadTest itself. */
export interface LoadTestDeps {
  /** metadata.uid of the live ArenaLoadTest (the owner of every rendered object). */
  uid: string;
  /** The ArenaDeployment named by spec.target.deploymentRef (defaulted, as validate.ts returns it). */
  deployment?: ArenaDeployment;
  /** The text of the bundled scenario file named by spec.scenario.bundled (loadTestDeps reads it). */
  bundledScenarioText?: string;
}

/** `<name>-runner`: the ConfigMap, ServiceAccount, Role, RoleBinding and Job of an ArenaLoadTest. */
export const runnerName = (lt: ArenaLoadTest) => `${lt.metadata.name}-runner`;
/** `<name>-shard-<i>`: the ConfigMap runner i publishes its shard result into. */
export const shardConfigMapName = (lt: ArenaLoadTest, i: number | string) => `${lt.metadata.name}-shard-${i}`;

/** The labels of every object of an ArenaLoadTest. */
export function loadTestLabels(lt: ArenaLoadTest): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'arena-loadtest',
    'app.kubernetes.io/instance': lt.metadata.name,
    'app.kubernetes.io/component': 'loadtest-runner',
    'app.kubernetes.io/part-of': 'arena',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [LOADTEST_LABEL]: lt.metadata.name,
  };
}

/**
 * The deps renderLoadTest needs, reading the bundled scenario file from
 * loadtest/scenarios/ (not pure: it reads a file). `deployment` is the
 * ArenaDeployment of target.deploymentRef, when there is one.
 * @throws InvalidInputError when the bundled scenario file cannot be read.
 */
export function loadTestDeps(lt: ArenaLoadTest, uid: string, deployment?: ArenaDeployment): LoadTestDeps {
  const name = lt.spec.scenario.bundled;
  if (name === undefined || (name === 'mixed' && lt.spec.target.deploymentRef)) return { uid, deployment };
  let text: string;
  try {
    text = readFileSync(join(SCENARIO_DIR, `${name}.yaml`), 'utf8');
  } catch (e) {
    throw new InvalidInputError(`spec.scenario.bundled: cannot read the bundled scenario ${name}: ${String(e)}`);
  }
  return { uid, deployment, bundledScenarioText: text };
}

/** The controlling ownerReference to the ArenaLoadTest `lt` (uid: its metadata.uid), on every object the operator creates for it. */
export function loadTestOwnerReference(lt: ArenaLoadTest, uid: string) {
  return {
    apiVersion: API_VERSION,
    kind: LOADTEST_KIND,
    name: lt.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function meta(lt: ArenaLoadTest, deps: LoadTestDeps, name: string, extraLabels: Record<string, string> = {}) {
  return {
    name,
    namespace: lt.metadata.namespace ?? 'default',
    labels: { ...loadTestLabels(lt), ...extraLabels },
    ownerReferences: [loadTestOwnerReference(lt, deps.uid)],
  };
}

/** The referenced ArenaDeployment, checked against the reference. @throws InvalidInputError when missing or another one. */
function referencedDeployment(lt: ArenaLoadTest, deps: LoadTestDeps): ArenaDeployment | undefined {
  const ref = lt.spec.target.deploymentRef;
  if (!ref) return undefined;
  const ad = deps.deployment;
  if (!ad) throw new InvalidInputError(`spec.target.deploymentRef: the ArenaDeployment ${ref.name} was not given`);
  if (ad.metadata.name !== ref.name)
    throw new InvalidInputError(
      `spec.target.deploymentRef: expected the ArenaDeployment ${ref.name}, got ${ad.metadata.name}`,
    );
  return ad;
}

/**
 * The scenario file text the runners get, or undefined for scenario.configMapRef.
 * @throws InvalidInputError when the bundled text is missing, or the requestMix cannot become a scenario.
 */
export function scenarioText(lt: ArenaLoadTest, deps: LoadTestDeps): string | undefined {
  const name = lt.spec.scenario.bundled;
  if (name === undefined) return undefined;
  const ad = referencedDeployment(lt, deps);
  if (name === 'mixed' && ad) {
    const s = fromRequestMix(ad);
    const file = { name: s.name, requests: s.requests, ...(s.thresholds ? { thresholds: s.thresholds } : {}) };
    return `# The requestMix of the ArenaDeployment ${ad.metadata.name} (as \`arena loadtest run --scenario mixed -f\`).\n${stringify(file, { lineWidth: 0 })}`;
  }
  if (deps.bundledScenarioText === undefined)
    throw new InvalidInputError(`spec.scenario.bundled: the text of the bundled scenario ${name} was not given`);
  return deps.bundledScenarioText;
}

/** The runners' input files (sorted by name): the ArenaDeployment, the scenario, the thresholds. */
function inputFiles(lt: ArenaLoadTest, deps: LoadTestDeps): Record<string, string> {
  const files: Record<string, string> = {};
  const ad = referencedDeployment(lt, deps);
  if (ad) {
    const doc = {
      apiVersion: ad.apiVersion,
      kind: ad.kind,
      metadata: { name: ad.metadata.name, namespace: ad.metadata.namespace ?? lt.metadata.namespace ?? 'default' },
      spec: ad.spec,
    };
    files['arenadeployment.yaml'] = stringify(doc, { lineWidth: 0 });
  }
  const scenario = scenarioText(lt, deps);
  if (scenario !== undefined) files['scenario.yaml'] = scenario;
  if (lt.spec.thresholds && Object.keys(lt.spec.thresholds).length > 0)
    files['thresholds.yaml'] = stringify(lt.spec.thresholds, { lineWidth: 0 });
  return files;
}

/** The target URL: spec.target.url, or the API Service of the referenced ArenaDeployment. */
export function targetUrl(lt: ArenaLoadTest, deps: LoadTestDeps): string {
  const ad = referencedDeployment(lt, deps);
  if (!ad) return lt.spec.target.url!;
  const ns = ad.metadata.namespace ?? lt.metadata.namespace ?? 'default';
  return `http://${objectName(ad, 'api')}.${ns}.svc:${ad.spec.api.port}`;
}

/** `--sample` of spec.sample: `kind=URL,...` in a fixed order, or undefined. */
function sampleArg(lt: ArenaLoadTest): string | undefined {
  const s = lt.spec.sample;
  if (!s) return undefined;
  const parts = (['pgbouncer', 'postgres', 'redis', 'health'] as const).flatMap((k) => (s[k] ? [`${k}=${s[k]}`] : []));
  return parts.length ? parts.join(',') : undefined;
}

/** Engine worker threads of a runner: its CPU (limit, else request) rounded up, at least 1. */
export function runnerWorkers(resources: IResourceRequirements): number {
  const cpu = String(resources.limits?.['cpu'] ?? resources.requests?.['cpu'] ?? '1');
  const cores = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
  return Math.max(1, Math.ceil(Number.isFinite(cores) ? cores : 1));
}

/** The load model flags of spec.load. */
function loadArgs(lt: ArenaLoadTest): string[] {
  const l = lt.spec.load;
  const model =
    l.vus !== undefined
      ? ['--concurrency', String(l.vus)]
      : l.rate !== undefined
        ? ['--rate', String(l.rate), '--arrival', l.arrival]
        : ['--from-plan', '--scale', String(l.fromPlan!.scale), '--arrival', l.arrival];
  return [
    ...model,
    '--ramp',
    l.ramp,
    '--duration',
    l.duration,
    '--ramp-down',
    l.rampDown,
    '--graceful-stop',
    l.gracefulStop,
  ];
}

/**
 * The runner container's arguments (after `arena`): `$(JOB_COMPLETION_INDEX)` is
 * expanded by the kubelet from the variable the Job controller sets in an
 * Indexed Job's pods.
 */
export function runnerArgs(lt: ArenaLoadTest, deps: LoadTestDeps, files: Record<string, string>): string[] {
  const n = lt.spec.parallelism;
  const sample = sampleArg(lt);
  const resources = lt.spec.runner.resources ?? DEFAULT_RUNNER_RESOURCES;
  return [
    'loadtest',
    'run',
    '--target',
    targetUrl(lt, deps),
    '--allow-remote',
    ...(files['arenadeployment.yaml'] ? ['-f', `${INPUT_DIR}/arenadeployment.yaml`] : []),
    '--scenario-file',
    `${INPUT_DIR}/scenario.yaml`,
    ...loadArgs(lt),
    ...(files['thresholds.yaml'] ? ['--thresholds', `${INPUT_DIR}/thresholds.yaml`] : []),
    ...(sample ? ['--sample', sample] : []),
    '--workers',
    String(runnerWorkers(resources as IResourceRequirements)),
    '--shard',
    `$(JOB_COMPLETION_INDEX)/${n}`,
    '--start-at-from',
    lt.metadata.name,
    '--start-deadline',
    `${lt.spec.runner.startDeadlineSeconds}s`,
    '--out',
    RESULT_DIR,
    '--publish-configmap',
    shardConfigMapName(lt, '$(JOB_COMPLETION_INDEX)'),
    '--quiet',
  ];
}

/** The Job's activeDeadlineSeconds: start deadline + ramp + duration + ramp-down + graceful stop + margin, s. */
export function jobDeadlineSeconds(lt: ArenaLoadTest): number {
  const l = lt.spec.load;
  const ms = [l.ramp, l.duration, l.rampDown, l.gracefulStop].reduce((s, d) => s + (parseDurationMs(d) ?? 0), 0);
  return lt.spec.runner.startDeadlineSeconds + Math.ceil(ms / 1000) + JOB_DEADLINE_MARGIN_SECONDS;
}

/** The projected volume of the input files: this test's ConfigMap and/or the user's scenario ConfigMap. */
function inputSources(lt: ArenaLoadTest, files: Record<string, string>): IVolumeProjection[] {
  const sources: IVolumeProjection[] = [];
  const keys = Object.keys(files);
  if (keys.length) sources.push({ configMap: { name: runnerName(lt), items: keys.map((k) => ({ key: k, path: k })) } });
  const ref = lt.spec.scenario.configMapRef;
  if (ref) sources.push({ configMap: { name: ref.name, items: [{ key: ref.key, path: 'scenario.yaml' }] } });
  return sources;
}

function runnerEnv(lt: ArenaLoadTest): IEnvVar[] {
  const env: IEnvVar[] = [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }];
  const secret = lt.spec.sample?.passwordSecretRef;
  if (secret) env.push({ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } } });
  return env;
}

function runnerJob(lt: ArenaLoadTest, deps: LoadTestDeps, files: Record<string, string>): IJob {
  const n = lt.spec.parallelism;
  const m = meta(lt, deps, runnerName(lt));
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: m,
    spec: {
      completionMode: 'Indexed',
      completions: n,
      parallelism: n,
      backoffLimitPerIndex: 0,
      activeDeadlineSeconds: jobDeadlineSeconds(lt),
      ttlSecondsAfterFinished: lt.spec.ttlSecondsAfterFinished,
      template: {
        metadata: { labels: { ...m.labels } },
        spec: {
          serviceAccountName: runnerName(lt),
          automountServiceAccountToken: true,
          restartPolicy: 'Never',
          securityContext: podSecurityContext(),
          containers: [
            {
              name: 'runner',
              image: lt.spec.runner.image,
              command: ['arena'],
              args: runnerArgs(lt, deps, files),
              env: runnerEnv(lt),
              resources: (lt.spec.runner.resources ?? DEFAULT_RUNNER_RESOURCES) as IResourceRequirements,
              securityContext: containerSecurityContext(),
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'input', mountPath: INPUT_DIR, readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: {} },
            { name: 'input', projected: { sources: inputSources(lt, files) } },
          ],
        },
      },
    },
  };
}

function runnerRbac(lt: ArenaLoadTest, deps: LoadTestDeps): [IServiceAccount, IRole, IRoleBinding] {
  const name = runnerName(lt);
  const shards = Array.from({ length: lt.spec.parallelism }, (_, i) => shardConfigMapName(lt, i));
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(lt, deps, name) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta(lt, deps, name),
      rules: [
        // the start signal: status.startAt of this ArenaLoadTest, and nothing else of the API group
        { apiGroups: ['arena.dev'], resources: ['arenaloadtests'], resourceNames: [lt.metadata.name], verbs: ['get'] },
        // readiness and the shard result: only the shard ConfigMaps the operator created
        { apiGroups: [''], resources: ['configmaps'], resourceNames: shards, verbs: ['get', 'update', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(lt, deps, name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: lt.metadata.namespace ?? 'default' }],
    },
  ];
}

/**
 * Render every object the operator creates for one (defaulted, valid) ArenaLoadTest.
 * @throws InvalidInputError when deps lack what the spec needs (the ArenaDeployment of
 *   target.deploymentRef, the bundled scenario text) or the requestMix cannot become a scenario.
 */
export function renderLoadTest(lt: ArenaLoadTest, deps: LoadTestDeps): KubeObject[] {
  const files = inputFiles(lt, deps);
  const out: unknown[] = [];
  if (Object.keys(files).length) {
    const cm: IConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(lt, deps, runnerName(lt)),
      data: files,
    };
    out.push(cm);
  }
  for (let i = 0; i < lt.spec.parallelism; i++) {
    // no data: the runner writes it (server-side apply of this object never clears what a runner wrote)
    const shard: IConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(lt, deps, shardConfigMapName(lt, i), { [SHARD_LABEL]: String(i) }),
    };
    out.push(shard);
  }
  out.push(...runnerRbac(lt, deps), runnerJob(lt, deps, files));
  return out as KubeObject[];
}
