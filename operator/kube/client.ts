/**
 * A small apiserver client on node's own http/https: JSON requests, watches
 * and paginated lists, for the operator process (docs/operator.md, "Cache and
 * memory").
 *
 * ONE keep-alive Agent per client: requests reuse idle connections and TLS
 * sessions instead of a handshake each (client-node creates a new Agent, so a
 * new connection and SecureContext, for every API call). Idle sockets are
 * closed after 60 s, before the apiserver's 90 s idle timeout; a request whose
 * reused socket was closed under it (ECONNRESET before any answer) is sent
 * once more on a fresh one.
 *
 * Errors: an apiserver answer >= 400 rejects with `KubeApiError` (`code`: the
 * HTTP status, `message`: the apiserver Status message); network errors and
 * timeouts reject with plain Errors.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KindInfo } from '../controller/kinds.js';
import type { ClusterConfig } from './config.js';

/** An object as the apiserver sends it (JSON): the client-node shape, status and anything else. */
export type KubeObject = KubernetesObject & { [k: string]: unknown };

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** The apiserver answered with an error status. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';

  /**
   * @param code the HTTP status (404, 409, 410, ...), or the `code` of a watch ERROR event's Status.
   * @param message the apiserver Status message, else a description of the answer.
   * @param body the parsed answer (a metav1.Status), or its text when it is not JSON.
   */
  constructor(
    readonly code: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }

  /** The Status `reason` (NotFound, Conflict, Expired, ...), if the answer had one. */
  get reason(): string | undefined {
    return (this.body as { reason?: string } | undefined)?.reason;
  }
}

/** Server-side apply (the body is JSON, which is YAML) and JSON merge patch. */
export const APPLY_PATCH = 'application/apply-patch+yaml';
export const MERGE_PATCH = 'application/merge-patch+json';

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Content-Type of the body (default application/json; APPLY_PATCH or MERGE_PATCH for a PATCH). */
  contentType?: string;
  /** Give up after this many ms (default: the client's, 30 s). */
  timeoutMs?: number;
}

export interface KubeClientOptions {
  /** Timeout of every non-watch request, ms (default 30 s). */
  timeoutMs?: number;
  /** How long a watch may last beyond its timeoutSeconds before it is cut as stalled, ms (default 60 s). */
  watchGraceMs?: number;
}

/** Counters of the client's connections (what the reuse test reads). */
export interface ClientStats {
  /** Requests sent (including watches). */
  requests: number;
  /** Requests that needed a new connection (a TCP connect and a TLS handshake). */
  connections: number;
}

/** A watch event's type. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** The apiserver path of the objects of a kind: `/api/v1` for core v1, else `/apis/<group>/<version>`. */
export function groupVersionPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/**
 * The path of a kind's collection (no name) or of one object, in `namespace` (cluster-wide when
 * undefined), with a subresource: `/apis/apps/v1/namespaces/ns/deployments/api/status`.
 */
export function resourcePath(kind: KindInfo, namespace?: string, name?: string, subresource?: string): string {
  let p = groupVersionPath(kind.apiVersion);
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${kind.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

const IDLE_SOCKET_MS = 60_000;

/** A client of one apiserver. `close()` it when done (it destroys the idle connections). */
export class KubeClient {
  readonly stats: ClientStats = { requests: 0, connections: 0 };
  private agent: HttpAgent;
  /** The client certificate (PEM) of the agent, when an exec plugin gave it. */
  private agentIdentity?: string;
  private readonly https: boolean;
  private readonly timeoutMs: number;
  private readonly watchGraceMs: number;
  private closed = false;

  constructor(
    readonly config: ClusterConfig,
    o: KubeClientOptions = {},
  ) {
    this.https = config.server.startsWith('https:');
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.watchGraceMs = o.watchGraceMs ?? 60_000;
    this.agent = this.newAgent(config.cert, config.key);
    this.agentIdentity = config.cert?.toString();
  }

  private newAgent(cert?: string | Buffer, key?: string | Buffer): HttpAgent {
    const common = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
    if (!this.https) return new HttpAgent(common);
    return new HttpsAgent({
      ...common,
      ca: this.config.ca,
      rejectUnauthorized: !this.config.insecureSkipTlsVerify,
      servername: this.config.tlsServerName,
      cert,
      key,
    });
  }

  /**
   * The credentials of the next request, and the agent to send it with. An exec plugin may hand out a
   * (new) client certificate: then a new agent replaces the old, which is destroyed once every request
   * it may carry has ended (11 minutes: the longest watch plus its grace).
   */
  private async prepare(): Promise<{ headers: Record<string, string>; agent: HttpAgent }> {
    const c = await this.config.credentials();
    const identity = c.cert?.toString();
    if (this.https && identity !== undefined && identity !== this.agentIdentity) {
      const old = this.agent;
      this.agent = this.newAgent(c.cert, c.key);
      this.agentIdentity = identity;
      setTimeout(() => old.destroy(), 11 * 60_000).unref();
    }
    return { headers: c.headers, agent: this.agent };
  }

  private url(path: string, query?: Query): URL {
    const u = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /**
   * Send one request; `onResponse` gets the answer, `onError` a failure before or during it. A request
   * whose reused keep-alive socket was reset before any answer is sent once more (on a fresh socket).
   * @returns a handle that destroys the request (the retried one, if it was retried).
   */
  private async send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    onResponse: (res: IncomingMessage) => void,
    onError: (err: Error) => void,
  ): Promise<{ destroy(err?: Error): void }> {
    const { headers: auth, agent } = await this.prepare();
    if (this.closed) throw new Error(`${method} ${url.pathname}: the client is closed`);
    let current: ClientRequest;
    const send = (retry: boolean): void => {
      const req = (this.https ? httpsRequest : httpRequest)(url, {
        method,
        agent,
        headers: { accept: 'application/json', ...auth, ...headers },
      });
      current = req;
      this.stats.requests++;
      let answered = false;
      req.once('socket', () => {
        if (!req.reusedSocket) this.stats.connections++;
      });
      req.once('response', (res) => {
        answered = true;
        onResponse(res);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!answered && retry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) send(false);
        else onError(err);
      });
      req.end(body);
    };
    send(true);
    return { destroy: (err) => current.destroy(err) };
  }

  /**
   * One request with a JSON answer.
   * @param method GET, POST, PUT, PATCH, DELETE.
   * @param path an apiserver path (`resourcePath`), without query.
   * @returns the parsed answer (undefined when empty).
   * @throws KubeApiError when the apiserver answers >= 400; Error on network errors and after the
   * timeout (o.timeoutMs, else the client's 30 s).
   */
  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = body
      ? { 'content-type': o.contentType ?? 'application/json', 'content-length': String(body.length) }
      : {};
    const ms = o.timeoutMs ?? this.timeoutMs;
    const url = this.url(path, o.query);
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const done = (f: () => void) => {
        settled = true;
        clearTimeout(timer);
        f();
      };
      const reqP = this.send(
        method,
        url,
        headers,
        body,
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => done(() => reject(err)));
          res.on('end', () =>
            done(() => {
              try {
                resolve(answer<T>(method, path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
              } catch (e) {
                reject(e as Error);
              }
            }),
          );
        },
        (err) => done(() => reject(err)),
      );
      reqP.then(
        (req) => {
          if (!settled)
            timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer within ${ms} ms`)), ms);
        },
        (err: Error) => done(() => reject(err)),
      );
    });
  }

  /**
   * Watch `path` (a collection): GET with watch=true and `query` (resourceVersion, labelSelector,
   * allowWatchBookmarks, timeoutSeconds, ...), calling `onEvent` for each event of the
   * newline-delimited JSON stream, in order. ERROR events are passed on as they come (their object is a
   * metav1.Status).
   * @param opened called once the apiserver has answered 200 (the watch is established).
   * @returns a promise that resolves when the apiserver ends the watch or `signal` aborts it.
   * @throws KubeApiError when the apiserver answers >= 400; the exception of `onEvent` (the watch is
   * closed); Error on network errors and when the watch outlives its timeoutSeconds by the grace
   * (60 s: a stalled connection).
   */
  watch(
    path: string,
    query: Query,
    onEvent: (type: WatchEventType, object: any) => void,
    signal?: AbortSignal,
    opened?: () => void,
  ): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    const url = this.url(path, { ...query, watch: true });
    const timeoutS = Number(query['timeoutSeconds'] ?? 0);
    return new Promise<void>((resolve, reject) => {
      let req: { destroy(err?: Error): void } | undefined;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        if (err) {
          req?.destroy();
          reject(err);
        } else resolve();
      };
      const abort = () => {
        req?.destroy();
        finish();
      };
      signal?.addEventListener('abort', abort, { once: true });
      const onResponse = (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              answer('GET', path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
              finish(new Error(`watch ${path}: unexpected HTTP ${res.statusCode}`));
            } catch (e) {
              finish(e as Error);
            }
          });
          return;
        }
        opened?.();
        readEvents(res, onEvent, finish);
      };
      this.send('GET', url, {}, undefined, onResponse, (err) => finish(err)).then(
        (r) => {
          req = r;
          if (settled) r.destroy();
          else if (timeoutS > 0) {
            const limit = timeoutS * 1000 + this.watchGraceMs;
            timer = setTimeout(() => finish(new Error(`watch ${path}: no end within ${limit} ms (stalled)`)), limit);
          }
        },
        (err: Error) => finish(err),
      );
    });
  }

  /**
   * List a kind, `pageSize` objects a request (limit/continue), in `namespace` (all when undefined),
   * with a label selector. Items get the kind's apiVersion and kind (the apiserver leaves them out of
   * list items). An expired continue token (410) restarts the list without pages.
   * @returns the items and the list's resourceVersion (to watch from).
   * @throws KubeApiError, Error as `request`.
   */
  async list<T extends KubeObject = KubeObject>(
    kind: KindInfo,
    o: { namespace?: string; labelSelector?: string; pageSize?: number } = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const path = resourcePath(kind, o.namespace);
    const items: T[] = [];
    let cont: string | undefined;
    let limit: number | undefined = o.pageSize ?? 500;
    let resourceVersion = '';
    do {
      type Page = { metadata?: { resourceVersion?: string; continue?: string }; items?: T[] };
      let page: Page;
      try {
        page = await this.request<Page>('GET', path, {
          query: { labelSelector: o.labelSelector, limit, continue: cont },
        });
      } catch (e) {
        if (!(e instanceof KubeApiError && e.code === 410 && cont !== undefined)) throw e;
        items.length = 0;
        cont = undefined;
        limit = undefined;
        continue;
      }
      for (const item of page.items ?? []) {
        item.apiVersion = kind.apiVersion;
        item.kind = kind.kind;
        items.push(item);
      }
      resourceVersion = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    return { items, resourceVersion };
  }

  /** Destroy the connections; later requests fail. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}

/** The parsed answer of a request. @throws KubeApiError when `status` >= 400. */
function answer<T>(method: string, path: string, status: number, text: string): T {
  let parsed: unknown = undefined;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (status >= 400 || status < 200) {
    const msg = (parsed as { message?: unknown } | undefined)?.message;
    const what =
      typeof msg === 'string' && msg !== ''
        ? msg
        : `${method} ${path}: HTTP ${status}${text ? `: ${text.slice(0, 200).trim()}` : ''}`;
    throw new KubeApiError(status, what, parsed ?? (text || undefined));
  }
  if (parsed === undefined && text !== '') throw new Error(`${method} ${path}: the answer is not JSON`);
  return parsed as T;
}

/**
 * Read a watch body: newline-delimited JSON events, each handed to `onEvent`; `finish()` at the end
 * of the body, `finish(err)` on a broken stream, an unparsable line or an exception of `onEvent`.
 */
function readEvents(
  res: IncomingMessage,
  onEvent: (type: WatchEventType, object: any) => void,
  finish: (err?: Error) => void,
): void {
  let rest = '';
  res.setEncoding('utf8');
  const line = (l: string): boolean => {
    if (l.trim() === '') return true;
    try {
      const e = JSON.parse(l) as { type: WatchEventType; object: unknown };
      onEvent(e.type, e.object);
      return true;
    } catch (err) {
      finish(err as Error);
      res.destroy();
      return false;
    }
  };
  res.on('data', (chunk: string) => {
    rest += chunk;
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const l = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (!line(l)) return;
    }
  });
  res.on('end', () => {
    if (line(rest)) finish();
  });
  res.on('error', (err) => finish(err));
  res.on('close', () => {
    if (!res.complete) finish(new Error('the watch connection was closed before the end of its body'));
  });
}
