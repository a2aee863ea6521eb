/**
 * Helpers for the packaging tests: the real helm (.tools/bin/helm, built from
 * Go modules by scripts/build-helm.sh), the real kubectl, a private local
 * control plane (.tools/bin/arena-testenv) on free ports, and Kubernetes
 * OpenAPI validation of rendered objects (kubernetes-models and
 * @kubernetes-models/prometheus-operator).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoPath } from '../../testing/paths.js';
import { ControlPlane as BaseControlPlane, TESTENV, type Run } from '../../testing/control-plane.js';
import { freePort, waitFor } from '../../testing/net.js';

export { TESTENV };

export const HELM = repoPath('.tools/bin/helm');
export const CHART_DIR = repoPath('charts/arena-operator');

export type { Run };
export { freePort, waitFor };

/** helm's cache/config/data in a temp dir, so tests never touch $HOME. */
let helmHome = '';
function helmEnv(): NodeJS.ProcessEnv {
  if (!helmHome) {
    helmHome = mkdtempSync(join(tmpdir(), 'arena-helm-home-'));
    process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }));
  }
  return {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
}

export function helmAvailable(): string | undefined {
  return existsSync(HELM) ? undefined : `${HELM} is missing: run make test (it builds helm with scripts/build-helm.sh)`;
}

export function helm(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(HELM, args, { encoding: 'utf8', env: { ...helmEnv(), ...env }, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** helm without blocking the event loop (for running several renders at once). */
export function helmAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(HELM, args, { env: helmEnv() });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** `--set` arguments from a flat object (values are passed with --set-json so types survive). */
export function setArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: any;
}

/** Parse a multi-document YAML stream into objects (empty documents dropped). */
export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`bad YAML from helm: ${d.errors[0]!.message}`);
      return d.toJS() as KubeObject | null;
    })
    .filter((o): o is KubeObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart; throws with helm's stderr when it fails. */
export function template(values: Record<string, unknown> = {}, extra: string[] = []): KubeObject[] {
  const r = helm([
    'template',
    'arena-operator',
    CHART_DIR,
    '--namespace',
    'arena-system',
    ...setArgs(values),
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.err}`);
  return parseObjects(r.out);
}

/**
 * Validate an object against the Kubernetes OpenAPI schema: kubernetes-models
 * for built-in kinds, @kubernetes-models/prometheus-operator (generated from
 * the prometheus-operator CRDs) for ServiceMonitor and PrometheusRule.
 */
export async function validateK8s(o: KubeObject): Promise<void> {
  const [group, version] = o.apiVersion.includes('/')
    ? (o.apiVersion.split('/') as [string, string])
    : ['', o.apiVersion];
  const mod =
    group === 'monitoring.coreos.com'
      ? await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`)
      : await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`);
  const Model = mod[o.kind] ?? mod.default;
  if (typeof Model !== 'function') throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

/** The shared control plane, with helm bound to it. */
export class ControlPlane extends BaseControlPlane {
  constructor() {
    super('arena-chart-');
  }

  helm(args: string[]): Run {
    return helm([...args, '--kubeconfig', this.kubeconfig], { KUBECACHEDIR: join(this.dir, 'kube-cache') });
  }
}
