/**
 * The operator as the e2e tests run it: out of cluster, as `arena operator run`,
 * with the token of a ServiceAccount bound to operator/rbac/*.yaml (not admin),
 * against a ControlPlane (testing/control-plane.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import type { ControlPlane } from './control-plane.js';
import { freePort, waitFor } from './net.js';
import { repoPath } from './paths.js';

const ARENA = repoPath('dist/cli/arena.js');

/** A running operator process: its metrics and probe ports and everything it logged. */
export interface OperatorProcess {
  proc: ChildProcess;
  metrics: number;
  probes: number;
  log: string[];
}

/**
 * Create the operator's ServiceAccount `arena-system/arena-operator` bound to the ClusterRole of
 * operator/rbac/role.yaml and, in `leaderNamespace`, to the leader-election Role, and write a
 * kubeconfig holding its token (2 h) into the control plane's folder. Returns the file's path.
 */
export function operatorKubeconfig(cp: ControlPlane, leaderNamespace: string): string {
  const ok = (r: ReturnType<ControlPlane['kubectl']>) => assert.equal(r.code, 0, r.err);
  bindOperatorServiceAccount(cp);
  ok(cp.kubectl(['apply', '-n', leaderNamespace, '-f', repoPath('operator/rbac/leader-election-role.yaml')]));
  ok(
    cp.kubectl([
      'create',
      'rolebinding',
      'arena-operator-leader-election',
      '-n',
      leaderNamespace,
      '--role=arena-operator-leader-election',
      '--serviceaccount=arena-system:arena-operator',
    ]),
  );
  return serviceAccountKubeconfig(cp, 'arena-system', 'arena-operator', join(cp.dir, 'operator.kubeconfig'));
}

/**
 * Create the namespace `arena-system`, the operator's ServiceAccount `arena-operator` in it, and bind it
 * to the ClusterRole of operator/rbac/role.yaml, as the chart does.
 */
export function bindOperatorServiceAccount(cp: ControlPlane): void {
  const ok = (r: ReturnType<ControlPlane['kubectl']>, what: string) => assert.equal(r.code, 0, `${what}: ${r.err}`);
  ok(cp.kubectl(['create', 'namespace', 'arena-system']), 'arena-system');
  ok(cp.kubectl(['create', 'serviceaccount', 'arena-operator', '-n', 'arena-system']), 'operator SA');
  ok(cp.kubectl(['apply', '-f', repoPath('operator/rbac/role.yaml')]), 'operator ClusterRole');
  const binding = ['clusterrolebinding', 'arena-operator', '--clusterrole=arena-operator'];
  ok(cp.kubectl(['create', ...binding, '--serviceaccount=arena-system:arena-operator']), 'operator binding');
}

/**
 * Write to `file` a kubeconfig for the control plane holding a token (2 h) of the ServiceAccount
 * `namespace/name`: what a pod running as it has. Returns `file`.
 */
export function serviceAccountKubeconfig(cp: ControlPlane, namespace: string, name: string, file: string): string {
  const token = cp.kubectl(['create', 'token', name, '-n', namespace, '--duration=2h']);
  assert.equal(token.code, 0, token.err);
  const admin = parse(readFileSync(cp.kubeconfig, 'utf8'));
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: admin.clusters,
    users: [{ name, user: { token: token.out.trim() } }],
    contexts: [{ name, context: { cluster: admin.clusters[0].name, user: name, namespace } }],
    'current-context': name,
  };
  writeFileSync(file, stringify(cfg), { mode: 0o600 });
  return file;
}

/** Apply every CRD in crds/ and wait until each is Established. */
export async function installCrds(cp: ControlPlane): Promise<void> {
  const r = cp.kubectl(['apply', '-f', repoPath('crds/')]);
  assert.equal(r.code, 0, r.err);
  for (const crd of ['arenadeployments.arena.dev', 'arenaloadtests.arena.dev'])
    await waitFor(
      `the CRD ${crd} to be established`,
      () => cp.kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=20s']).code === 0,
    );
}

/** Start `arena operator run --kubeconfig FILE` (relist 20 s) on free ports; resolves once /healthz answers. */
export async function startOperatorProcess(kubeconfig: string, extra: string[] = []): Promise<OperatorProcess> {
  const metrics = await freePort();
  const probes = await freePort();
  const proc = spawn(
    process.execPath,
    [
      ARENA,
      'operator',
      'run',
      '--kubeconfig',
      kubeconfig,
      '--metrics-bind-address',
      `127.0.0.1:${metrics}`,
      '--health-probe-bind-address',
      `127.0.0.1:${probes}`,
      '--relist-period',
      '20s',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const op = { proc, metrics, probes, log: [] as string[] };
  proc.stdout!.on('data', (d) => op.log.push(String(d)));
  proc.stderr!.on('data', (d) => op.log.push(String(d)));
  await waitFor('the operator /healthz', async () => (await fetch(`http://127.0.0.1:${probes}/healthz`)).ok, 20_000);
  return op;
}

/** SIGTERM, then SIGKILL after 15 s. */
export async function stopOperatorProcess(op: OperatorProcess): Promise<void> {
  if (op.proc.exitCode !== null) return;
  const exited = new Promise((r) => op.proc.once('exit', r));
  op.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (op.proc.exitCode === null) op.proc.kill('SIGKILL');
}

/** The sum of every series of a metric on the operator's /metrics. */
export async function operatorMetric(op: OperatorProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${op.metrics}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}
