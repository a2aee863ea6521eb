/**
 * Where the operator's apiserver is and how it proves who it is: a kubeconfig
 * file, or a pod's ServiceAccount (in-cluster), loaded without
 * @kubernetes/client-node (importing it costs ~70 MiB of RSS, docs/operator.md
 * "Cache and memory").
 *
 * Which source (`loadKubeConfig`): an explicit file; else in-cluster when
 * KUBERNETES_SERVICE_HOST is set; else the FIRST existing file of $KUBECONFIG
 * (kubectl merges every file of the list; this reads only the first one that
 * exists, which is enough for one context); else ~/.kube/config.
 *
 * From a kubeconfig it reads the current-context, its cluster's `server`,
 * `certificate-authority` / `certificate-authority-data`, `insecure-skip-tls-verify`
 * and `tls-server-name`, and its user's `client-certificate` / `-data`,
 * `client-key` / `-data`, `token`, `tokenFile` and `username` / `password`.
 * Relative file names are relative to the kubeconfig's folder; `-data` wins over
 * the file, as in client-go.
 *
 * A user with `exec` (a credential plugin) or `auth-provider` is handed to
 * client-node: the first request imports it (`await import('@kubernetes/client-node')`,
 * the only place the operator process loads it, and then it costs its ~70 MiB)
 * and every request takes its headers and TLS material from its KubeConfig's
 * `applyToHTTPSOptions` (client-node runs and caches the plugin).
 *
 * Token files (in-cluster, and a user's `tokenFile`) are read again every minute:
 * bound ServiceAccount tokens rotate.
 *
 * Errors: `KubeConfigError`, one line naming the file and what is wrong
 * (`/home/me/.kube/config: no current-context`, `...: context dev names no cluster`).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

/** Where a pod's ServiceAccount token, CA bundle and namespace are mounted. */
export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How long a token read from a file is used before the file is read again, ms (bound tokens rotate). */
export const TOKEN_REFRESH_MS = 60_000;

/** A kubeconfig (or in-cluster setup) that cannot be used: one line naming the file and what is wrong. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/** What one request sends to prove who it is. */
export interface Credentials {
  /** Headers to add, e.g. `{ authorization: 'Bearer ...' }`; empty for a client certificate or anonymous. */
  headers: Record<string, string>;
  /** Client certificate and key (PEM), when an exec plugin hands them out (else ClusterConfig's). */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** An apiserver and the credentials to talk to it. */
export interface ClusterConfig {
  /** Where it came from: the kubeconfig's path, or `in-cluster (<dir>)`. */
  source: string;
  /** The apiserver's base URL without a trailing slash, e.g. `https://10.96.0.1:443`. */
  server: string;
  /** The current context's namespace (kubeconfig) or the pod's (in-cluster), if any. */
  namespace?: string;
  /** CA bundle (PEM) to verify the apiserver with, instead of the system's CAs. */
  ca?: Buffer;
  /** insecure-skip-tls-verify: do not verify the apiserver's certificate. */
  insecureSkipTlsVerify: boolean;
  /** tls-server-name: the name to verify the certificate against (SNI), instead of the server's host. */
  tlsServerName?: string;
  /** The user's client certificate and key (PEM), when it authenticates with one. */
  cert?: Buffer;
  key?: Buffer;
  /** `static`: fixed credentials; `token-file`: a token read again every minute; `client-node`: exec or auth-provider. */
  auth: 'static' | 'token-file' | 'client-node';
  /** The credentials of the next request. @throws Error when a token file cannot be read the first time, or a plugin fails. */
  credentials(): Promise<Credentials>;
}

/**
 * Load the operator's cluster config: `file` when given; else in-cluster when KUBERNETES_SERVICE_HOST
 * is set; else the first existing file of $KUBECONFIG; else ~/.kube/config.
 * @throws KubeConfigError (one line naming the file) when it is missing, unreadable or incomplete.
 */
export function loadKubeConfig(file?: string, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  if (file) return loadKubeconfigFile(file);
  if (env['KUBERNETES_SERVICE_HOST']) return loadInCluster({ env });
  const listed = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  if (listed.length > 0) {
    const first = listed.find((f) => existsSync(f));
    if (!first) throw new KubeConfigError(`KUBECONFIG=${env['KUBECONFIG']}: no such file`);
    return loadKubeconfigFile(first);
  }
  const home = join(env['HOME'] || homedir(), '.kube', 'config');
  if (!existsSync(home))
    throw new KubeConfigError(`${home}: no such file (and neither KUBECONFIG nor KUBERNETES_SERVICE_HOST is set)`);
  return loadKubeconfigFile(home);
}

/**
 * The pod's ServiceAccount: server https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (http for
 * ports 80, 8080, 8001, as client-node), CA `<dir>/ca.crt`, token `<dir>/token` (read again every
 * `tokenRefreshMs`), namespace `<dir>/namespace`.
 * @throws KubeConfigError when KUBERNETES_SERVICE_HOST is unset or the token cannot be read.
 */
export function loadInCluster(
  o: { dir?: string; env?: NodeJS.ProcessEnv; tokenRefreshMs?: number } = {},
): ClusterConfig {
  const dir = o.dir ?? SERVICEACCOUNT_DIR;
  const env = o.env ?? process.env;
  const source = `in-cluster (${dir})`;
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] || '443';
  if (!host) throw new KubeConfigError(`${source}: KUBERNETES_SERVICE_HOST is not set`);
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const token = new TokenFile(join(dir, 'token'), o.tokenRefreshMs);
  token.read(source); // fail now, not at the first request
  const caFile = join(dir, 'ca.crt');
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    source,
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    namespace,
    ca: existsSync(caFile) ? readFileSync(caFile) : undefined,
    insecureSkipTlsVerify: false,
    auth: 'token-file',
    credentials: () => Promise.resolve({ headers: { authorization: `Bearer ${token.read(source)}` } }),
  };
}

/** A token file, read again once the last read is `refreshMs` old; the last good token stays when a read fails. */
class TokenFile {
  private token = '';
  private readAt = 0;

  constructor(
    private readonly file: string,
    private readonly refreshMs = TOKEN_REFRESH_MS,
  ) {}

  /** The token. @throws KubeConfigError naming `source` and the file when it was never read successfully. */
  read(source: string): string {
    if (this.token && Date.now() - this.readAt < this.refreshMs) return this.token;
    try {
      const t = readFileSync(this.file, 'utf8').trim();
      if (t) this.token = t;
      this.readAt = Date.now();
    } catch (e) {
      if (!this.token) throw new KubeConfigError(`${source}: cannot read the token file ${this.file} (${errCode(e)})`);
    }
    if (!this.token) throw new KubeConfigError(`${source}: the token file ${this.file} is empty`);
    return this.token;
  }
}

const errCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

type Named<T> = { name?: unknown } & T;
interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}
interface RawUser {
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}

/** The entry of `list` (clusters, contexts, users) named `name`, with its inner object under `field`. */
function named<T>(list: unknown, name: string, field: string): T | undefined {
  if (!Array.isArray(list)) return undefined;
  const e = (list as Named<Record<string, T>>[]).find((x) => x && x.name === name);
  return e ? ((e[field] ?? {}) as T) : undefined;
}

type Fail = (what: string) => never;

/** The kubeconfig `file` as a YAML mapping. @throws KubeConfigError (through `fail`) when unreadable or not one. */
function readDoc(file: string, fail: Fail): Record<string, unknown> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail(`cannot read (${errCode(e)})`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    fail(`not YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return fail('not a kubeconfig (not a YAML mapping)');
  return doc as Record<string, unknown>;
}

/** The current context of `doc` and the cluster and user it names. @throws KubeConfigError (through `fail`). */
function currentContext(doc: Record<string, unknown>, fail: Fail) {
  const name = doc['current-context'];
  if (typeof name !== 'string' || name === '') return fail('no current-context');
  const ctx = named<{ cluster?: string; user?: string; namespace?: string }>(doc['contexts'], name, 'context');
  if (!ctx) return fail(`current-context ${name} is not in contexts`);
  if (!ctx.cluster) return fail(`context ${name} names no cluster`);
  const cluster = named<RawCluster>(doc['clusters'], ctx.cluster, 'cluster');
  if (!cluster) return fail(`context ${name} names cluster ${ctx.cluster}, which is not in clusters`);
  if (!cluster.server) return fail(`cluster ${ctx.cluster} has no server`);
  let protocol = '';
  try {
    protocol = new URL(cluster.server).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'https:' && protocol !== 'http:')
    fail(`cluster ${ctx.cluster}: server ${cluster.server} is not an http(s) URL`);
  const user = ctx.user ? named<RawUser>(doc['users'], ctx.user, 'user') : {};
  if (!user) return fail(`context ${name} names user ${ctx.user}, which is not in users`);
  return { name, ctx, cluster, user, server: cluster.server.replace(/\/+$/, '') };
}

/**
 * Load one kubeconfig file (its current-context).
 * @throws KubeConfigError naming `file` and what is wrong: unreadable, not YAML, no current-context,
 * a context naming no (or an unknown) cluster or user, a cluster without server, an unreadable
 * certificate file, a client certificate without key.
 */
export function loadKubeconfigFile(file: string): ClusterConfig {
  const fail: Fail = (what) => {
    throw new KubeConfigError(`${file}: ${what}`);
  };
  const { name, ctx, cluster, user, server } = currentContext(readDoc(file, fail), fail);
  const base = dirname(resolve(file));
  const pem = (what: string, data?: string, path?: string): Buffer | undefined => {
    if (data) return Buffer.from(data, 'base64');
    if (!path) return undefined;
    const p = resolve(base, path);
    try {
      return readFileSync(p);
    } catch (e) {
      return fail(`${what} ${p}: cannot read (${errCode(e)})`);
    }
  };
  const common = {
    source: file,
    server,
    namespace: ctx.namespace || undefined,
    ca: pem(
      `cluster ${ctx.cluster}: certificate-authority`,
      cluster['certificate-authority-data'],
      cluster['certificate-authority'],
    ),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: cluster['tls-server-name'] || undefined,
  };
  if (user.exec || user['auth-provider'])
    return { ...common, auth: 'client-node', credentials: viaClientNode(file, name) };
  const u = `user ${ctx.user}`;
  const cert = pem(`${u}: client-certificate`, user['client-certificate-data'], user['client-certificate']);
  const key = pem(`${u}: client-key`, user['client-key-data'], user['client-key']);
  if (cert && !key) return fail(`${u} has a client-certificate but no client-key`);
  if (key && !cert) return fail(`${u} has a client-key but no client-certificate`);
  return { ...common, cert, key, ...userAuth(user, base, `${file}: ${u}`) };
}

/** How a user without exec or auth-provider proves who it is: a token, a token file, a password, or nothing (or its certificate). */
function userAuth(user: RawUser, base: string, source: string): Pick<ClusterConfig, 'auth' | 'credentials'> {
  if (user.token) {
    const headers = { authorization: `Bearer ${user.token}` };
    return { auth: 'static', credentials: () => Promise.resolve({ headers }) };
  }
  if (user.tokenFile) {
    const token = new TokenFile(resolve(base, user.tokenFile));
    token.read(source);
    return {
      auth: 'token-file',
      credentials: () => Promise.resolve({ headers: { authorization: `Bearer ${token.read(source)}` } }),
    };
  }
  const headers: Record<string, string> = user.username
    ? { authorization: `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}` }
    : {};
  return { auth: 'static', credentials: () => Promise.resolve({ headers }) };
}

/**
 * Credentials of an exec or auth-provider user, from client-node's KubeConfig (imported on the first
 * call, loaded from `file` with `context` current): its applyToHTTPSOptions gives each request's
 * headers (and basic auth) and the client certificate, if any.
 */
function viaClientNode(file: string, context: string): () => Promise<Credentials> {
  let kc: Promise<{ applyToHTTPSOptions(o: RequestOptions): Promise<void> }> | undefined;
  return async () => {
    kc ??= import('@kubernetes/client-node').then((k8s) => {
      const c = new k8s.KubeConfig();
      c.loadFromFile(file);
      c.setCurrentContext(context);
      return c;
    });
    const opts: RequestOptions = {};
    await (await kc).applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {}))
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    if (opts.auth) headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const cert = opts.cert as string | Buffer | undefined;
    const key = opts.key as string | Buffer | undefined;
    return { headers, ...(cert && key ? { cert, key } : {}) };
  };
}
