/**
 * Small real HTTP servers for the engine's tests (node:http on 127.0.0.1, a
 * free port): a fixed-latency endpoint whose latency can be changed while it
 * runs, an SSE endpoint with a known first-event delay and interval, and a
 * task endpoint pair. Each keeps a log of what it answered so tests can
 * compute figures independently of the engine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url: string;
  server: Server;
  /** Requests being served right now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
  /** Requests answered, by path. */
  answered: Map<string, number>;
  /** The hold times /hold?ms=N was asked for, in the order answered. */
  held: number[];
  /** Latency of /fixed, ms (changeable while running). */
  latencyMs: number;
  /** When set, /fixed requests arriving before this epoch ms wait until it (a stall). */
  stallUntil: number;
  close(): Promise<void>;
}

export interface ServerOptions {
  latencyMs?: number;
  /** SSE: delay before the first token, gap between tokens, number of tokens. */
  sseFirstMs?: number;
  sseIntervalMs?: number;
  sseTokens?: number;
  /** Task: time a task takes to be done after submit, ms. */
  taskMs?: number;
}

/** Start a test server. Routes: GET /fixed, GET /hold?ms=N, POST /sse, POST /task + GET /task/:id, GET /status/:code. */
export async function startTestServer(o: ServerOptions = {}): Promise<TestServer> {
  const tasks = new Map<string, { created: number; done: number }>();
  let nextId = 1;
  const s: TestServer = {
    url: '',
    server: undefined as unknown as Server,
    inFlight: 0,
    maxInFlight: 0,
    answered: new Map(),
    held: [],
    latencyMs: o.latencyMs ?? 10,
    stallUntil: 0,
    close: () =>
      new Promise<void>((r) => {
        s.server.closeAllConnections();
        s.server.close(() => r());
      }),
  };
  const count = (path: string) => s.answered.set(path, (s.answered.get(path) ?? 0) + 1);
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    res.on('close', () => s.inFlight--);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    req.resume();
    if (path === '/fixed') {
      const wait = Math.max(s.latencyMs, s.stallUntil - Date.now());
      setTimeout(() => {
        count(path);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }, wait);
    } else if (path === '/hold') {
      const ms = Number(url.searchParams.get('ms') ?? 0);
      setTimeout(() => {
        s.held.push(ms);
        count(path);
        res.writeHead(200).end('ok');
      }, ms);
    } else if (path === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('event: start\ndata: {"type":"start"}\n\n');
      const n = o.sseTokens ?? 10;
      let i = 0;
      const tick = () => {
        if (res.destroyed) return;
        res.write(`data: {"index":${i}}\n\n`);
        if (++i < n) setTimeout(tick, o.sseIntervalMs ?? 20);
        else {
          count(path);
          res.end('event: done\ndata: {}\n\n');
        }
      };
      setTimeout(tick, o.sseFirstMs ?? 50);
    } else if (path === '/task' && req.method === 'POST') {
      const id = String(nextId++);
      const now = Date.now();
      tasks.set(id, { created: now, done: now + (o.taskMs ?? 100) });
      count(path);
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ task_id: id, status: 'queued' }));
    } else if (path.startsWith('/task/')) {
      const t = tasks.get(path.slice(6));
      count('/task/:id');
      if (!t) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      const done = Date.now() >= t.done;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          status: done ? 'done' : 'queued',
          created_at: new Date(t.created).toISOString(),
          started_at: new Date(t.created + 20).toISOString(),
        }),
      );
    } else if (path.startsWith('/status/')) {
      count(path);
      res
        .writeHead(Number(path.slice(8)), { 'content-type': 'application/json' })
        .end('{"error":"llm_slots_busy","message":"busy"}');
    } else {
      count(path);
      res.writeHead(200).end('ok');
    }
  };
  s.server = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 60_000 }, handler);
  s.server.maxHeadersCount = 100;
  await new Promise<void>((r) => s.server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
  s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  return s;
}
