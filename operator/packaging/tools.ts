/**
 * Helpers for the packaging tests: the real helm (.tools/bin/helm, built from
 * Go modules by scripts/build-helm.sh), the real kubectl, a private local
 * control plane (.tools/bin/arena-testenv) on free ports, and Kubernetes
 * OpenAPI validation of rendered objects (kubernetes-models and
 * @kubernetes-models/prometheus-operator).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { repoPath } from '../testing/paths.js';

export const HELM = repoPath('.tools/bin/helm');
export const TESTENV = repoPath('.tools/bin/arena-testenv');
export const CHART_DIR = repoPath('charts/arena-operator');

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** helm's cache/config/data in a temp dir, so tests never touch $HOME. */
let helmHome = '';
function helmEnv(): NodeJS.ProcessEnv {
  if (!helmHome) {
    helmHome = mkdtempSync(join(tmpdir(), 'arena-helm-home-'));
    process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }));
  }
  return { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') };
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
  const r = helm(['template', 'arena-operator', CHART_DIR, '--namespace', 'arena-system', ...setArgs(values), ...extra]);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.err}`);
  return parseObjects(r.out);
}

/**
 * Validate an object against the Kubernetes OpenAPI schema: kubernetes-models
 * for built-in kinds, @kubernetes-models/prometheus-operator (generated from
 * the prometheus-operator CRDs) for ServiceMonitor and PrometheusRule.
 */
export async function validateK8s(o: KubeObject): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? (o.apiVersion.split('/') as [string, string]) : ['', o.apiVersion];
  const mod =
    group === 'monitoring.coreos.com'
      ? await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`)
      : await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`);
  const Model = mod[o.kind] ?? mod.default;
  if (typeof Model !== 'function') throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** A private control plane (etcd + kube-apiserver + kube-controller-manager) on free ports in a temp dir. */
export class ControlPlane {
  dir = '';
  kubeconfig = '';
  private proc: ChildProcess | undefined;

  async start(): Promise<void> {
    if (!existsSync(TESTENV)) throw new Error(`${TESTENV} is missing: run make test (it builds the control plane with operator/testenv/build.sh)`);
    this.dir = mkdtempSync(join(tmpdir(), 'arena-chart-'));
    const ports = [await freePort(), await freePort(), await freePort()];
    this.proc = spawn(TESTENV, ['--data-dir', this.dir, '--etcd-client-port', String(ports[0]), '--etcd-peer-port', String(ports[1]), '--secure-port', String(ports[2]), '--etcd-unsafe-no-fsync'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    this.proc.stdout!.on('data', (d) => (out += d));
    const end = Date.now() + 120_000;
    while (!out.includes('ready kubeconfig=')) {
      if (this.proc.exitCode !== null) throw new Error(`arena-testenv exited with ${this.proc.exitCode} before it was ready`);
      if (Date.now() > end) throw new Error('timed out after 120 s waiting for the control plane');
      await sleep(200);
    }
    this.kubeconfig = join(this.dir, 'kubeconfig');
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000, undefined, { ref: false })]); // unref'd: a pending timer must not keep the test process alive
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** kubectl's and helm's discovery cache in the temp dir, not in ~/.kube/cache. */
  private env(): NodeJS.ProcessEnv {
    return { KUBECACHEDIR: join(this.dir, 'kube-cache') };
  }

  kubectl(args: string[], input?: string): Run {
    const r = spawnSync('kubectl', ['--kubeconfig', this.kubeconfig, ...args], { input, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...this.env() } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  helm(args: string[]): Run {
    return helm([...args, '--kubeconfig', this.kubeconfig], this.env());
  }

  /** `kubectl get ... -o json`, or undefined when it does not exist. */
  get(args: string[]): any {
    const r = this.kubectl(['get', ...args, '-o', 'json']);
    if (r.code !== 0) {
      if (/NotFound|not found/.test(r.err)) return undefined;
      throw new Error(r.err);
    }
    return JSON.parse(r.out);
  }
}
