/**
 * A private local control plane for tests and benchmarks: .tools/bin/arena-testenv
 * (etcd + kube-apiserver + kube-controller-manager, built by operator/testenv/build.sh)
 * on free ports in a temporary data dir, driven with the real kubectl.
 * Node's test runner runs test files in parallel: each file starts its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './net.js';
import { repoPath } from './paths.js';

export const TESTENV = repoPath('.tools/bin/arena-testenv');

/** The outcome of a command: exit code, stdout, stderr. */
export interface Run {
  code: number | null;
  out: string;
  err: string;
}

export class ControlPlane {
  dir = '';
  kubeconfig = '';
  private ports: number[] = [];
  private proc: ChildProcess | undefined;

  /** @param prefix name prefix of the temporary data dir. */
  constructor(private readonly prefix = 'arena-cp-') {}

  /**
   * Start (the first call picks the data dir and ports; later calls restart on
   * the same ones, so data survives a stop()). Resolves once the apiserver is ready.
   * @throws Error when the binary is missing, exits early, or is not ready within 120 s.
   */
  async start(): Promise<void> {
    if (!existsSync(TESTENV))
      throw new Error(
        `${TESTENV} is missing: run make test (it builds the control plane with operator/testenv/build.sh)`,
      );
    if (!this.dir) {
      this.dir = mkdtempSync(join(tmpdir(), this.prefix));
      this.ports = [await freePort(), await freePort(), await freePort()];
    }
    const [etcd, peer, api] = this.ports.map(String) as [string, string, string];
    const proc = spawn(
      TESTENV,
      [
        '--data-dir',
        this.dir,
        '--etcd-client-port',
        etcd,
        '--etcd-peer-port',
        peer,
        '--secure-port',
        api,
        '--etcd-unsafe-no-fsync',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    this.proc = proc;
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    const end = Date.now() + 120_000;
    while (!out.includes('ready kubeconfig=')) {
      if (proc.exitCode !== null) throw new Error(`arena-testenv exited with ${proc.exitCode} before it was ready`);
      if (Date.now() > end) throw new Error('timed out after 120 s waiting for the control plane');
      await sleep(200);
    }
    this.kubeconfig = join(this.dir, 'kubeconfig');
  }

  /** Stop the process (SIGTERM, then SIGKILL after 30 s); keeps the data dir for a restart. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000, undefined, { ref: false })]); // unref'd: a pending timer must not keep the test process alive
    if (p.exitCode === null) p.kill('SIGKILL');
  }

  /** Stop and remove the data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Environment for kubectl and helm: their discovery cache in the data dir, not in ~/.kube/cache. */
  env(): NodeJS.ProcessEnv {
    return { ...process.env, KUBECACHEDIR: join(this.dir, 'kube-cache') };
  }

  kubectl(args: string[], input?: string): Run {
    const r = spawnSync('kubectl', ['--kubeconfig', this.kubeconfig, ...args], {
      input,
      encoding: 'utf8',
      timeout: 60_000,
      env: this.env(),
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  /** `kubectl get ... -o json`, or undefined when it does not exist. @throws Error on other failures. */
  get(args: string[]): any {
    const r = this.kubectl(['get', ...args, '-o', 'json']);
    if (r.code !== 0) {
      if (/NotFound|not found/.test(r.err)) return undefined;
      throw new Error(r.err);
    }
    return JSON.parse(r.out);
  }
}
