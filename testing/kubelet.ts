/**
 * The kubelet's part for one pod of a Job, played honestly on this machine
 * (the test control plane has no kubelet and no container runtime): the pod's
 * container command and args, with `$(VAR)` expanded from its env as the
 * kubelet does; its env (downward API `metadata.namespace` resolved); its
 * volumes materialised in a local folder (ConfigMap and projected ConfigMap
 * sources read from the apiserver, emptyDirs empty) and the mount paths in the
 * args mapped onto them; the ServiceAccount's token as a kubeconfig. It runs
 * the process, then writes the pod's `status.phase` (Running, then Succeeded
 * or Failed by exit code) so the Job controller sees the outcome.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from './control-plane.js';
import { serviceAccountKubeconfig } from './operator.js';
import { waitFor } from './net.js';
import { repoPath } from './paths.js';

/** A pod's process as this kubelet runs it. */
export interface LocalPod {
  name: string;
  proc: ChildProcess;
  /** The folder holding the pod's volumes (`<dir>/<volume name>`). */
  dir: string;
  /** Resolves with the exit code once the process has ended and the pod's phase is written. */
  exited: Promise<number | null>;
  stderr: () => string;
}

/** The pod of index `index` of an Indexed Job, once the Job controller has created it. */
export async function jobPod(cp: ControlPlane, namespace: string, job: string, index: number): Promise<any> {
  let pod: any;
  await waitFor(`pod ${index} of Job ${job}`, () => {
    const list = cp.get(['pods', '-n', namespace, '-l', `batch.kubernetes.io/job-name=${job}`]);
    pod = list?.items?.find(
      (p: any) => p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'] === String(index),
    );
    return !!pod;
  });
  return pod;
}

function setPhase(cp: ControlPlane, namespace: string, pod: string, phase: string): void {
  const r = cp.kubectl([
    'patch',
    'pod',
    pod,
    '-n',
    namespace,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { phase } }),
  ]);
  // a pod deleted meanwhile (its Job was deleted) has no status to write, as for a real kubelet
  if (!/NotFound/.test(r.err)) assert.equal(r.code, 0, `pod ${pod} status: ${r.err}`);
}

/** Materialise the pod's volumes under `dir`; returns mountPath -> local folder. */
function volumes(cp: ControlPlane, namespace: string, spec: any, container: any, dir: string): [string, string][] {
  const local = new Map<string, string>();
  for (const v of spec.volumes ?? []) {
    const d = join(dir, v.name);
    mkdirSync(d, { recursive: true });
    local.set(v.name, d);
    const sources = v.configMap ? [{ configMap: v.configMap }] : (v.projected?.sources ?? []);
    for (const src of sources) {
      if (!src.configMap) continue;
      const cm = cp.get(['configmap', src.configMap.name, '-n', namespace]);
      assert.ok(cm, `ConfigMap ${src.configMap.name} of volume ${v.name}`);
      const items = src.configMap.items ?? Object.keys(cm.data ?? {}).map((k: string) => ({ key: k, path: k }));
      for (const it of items) writeFileSync(join(d, it.path), cm.data[it.key]);
    }
  }
  return (container.volumeMounts ?? [])
    .map((m: any) => [m.mountPath, local.get(m.name)!] as [string, string])
    .sort((a: [string, string], b: [string, string]) => b[0].length - a[0].length);
}

/**
 * Run the first container of `pod` (a Pod object from the apiserver) as a local process.
 * The image's `arena` is this checkout's dist/cli/arena.js.
 */
export function runPod(cp: ControlPlane, pod: any, dir: string): LocalPod {
  const namespace = pod.metadata.namespace as string;
  const spec = pod.spec;
  const c = spec.containers[0];
  mkdirSync(dir, { recursive: true });
  const mounts = volumes(cp, namespace, spec, c, join(dir, 'volumes'));
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = pod.metadata.name;
    else {
      // the Job controller sets JOB_COMPLETION_INDEX from metadata.annotations['batch.kubernetes.io/job-completion-index']
      const m = /^metadata\.(annotations|labels)\['(.+)'\]$/.exec(e.valueFrom?.fieldRef?.fieldPath ?? '');
      if (m) env[e.name] = pod.metadata[m[1]!]?.[m[2]!] ?? '';
    }
  }
  assert.ok(env['JOB_COMPLETION_INDEX'] !== undefined, 'the Job controller set JOB_COMPLETION_INDEX');
  const kubeconfig = serviceAccountKubeconfig(cp, namespace, spec.serviceAccountName, join(dir, 'sa.kubeconfig'));
  const expand = (a: string) => {
    const out = a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
    const m = mounts.find(([path]) => out === path || out.startsWith(`${path}/`));
    return m ? m[1] + out.slice(m[0].length) : out;
  };
  assert.deepEqual(c.command, ['arena'], 'the runner image runs arena');
  const args = (c.args ?? []).map(expand);
  const proc = spawn(process.execPath, [repoPath('dist/cli/arena.js'), ...args], {
    env: { ...process.env, ...env, KUBECONFIG: kubeconfig, NO_COLOR: '1', KUBERNETES_SERVICE_HOST: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  setPhase(cp, namespace, pod.metadata.name, 'Running');
  const exited = new Promise<number | null>((resolve) => {
    proc.on('close', (code) => {
      setPhase(cp, namespace, pod.metadata.name, code === 0 ? 'Succeeded' : 'Failed');
      resolve(code);
    });
  });
  return { name: pod.metadata.name, proc, dir, exited, stderr: () => err };
}
