/**
 * A fixed-latency HTTP/1.1 target for the load-engine benchmark
 * (`make bench-engine`, loadtest/bench/engine-bench.ts).
 *
 * Every request is answered `200 ok` exactly `--hold-ms` after it arrived
 * (its headers were parsed), so a load generator's latency minus hold-ms is
 * what the generator (and this server's event loop) added. Requests to
 * `--sse-path` get a `text/event-stream` instead: headers at once, the first
 * `data:` event after `--sse-first-ms`, then `--sse-events` events in all,
 * `--sse-interval-ms` apart, then `event: done` one interval later and the end
 * of the response. Event times are scheduled from the request's arrival
 * (absolute, so a late timer never shifts the following events): with the
 * defaults a stream lasts first-ms + 20 x 100 ms = 2.0 s, its time to first
 * token is first-ms and its inter-token latency 100 ms.
 *
 *   node dist/loadtest/bench/target-server.js --port 0 --hold-ms 2000 \
 *     [--sse-path /sse] [--sse-first-ms 0] [--sse-events 20] [--sse-interval-ms 100]
 *
 * Flags win over the environment: TARGET_PORT, TARGET_HOLD_MS, TARGET_SSE_PATH,
 * TARGET_SSE_FIRST_MS, TARGET_SSE_EVENTS, TARGET_SSE_INTERVAL_MS.
 *
 * Made to hold 10,000+ open sockets: binds 127.0.0.1 only, keep-alive on,
 * no cap on connections (`server.maxConnections` left unset) or on requests
 * per socket, 120 s headers/request/keep-alive timeouts, listen backlog 16384
 * (the kernel caps it at net.core.somaxconn). The open-files limit is the
 * caller's business (the benchmark raises it with `ulimit -n`).
 *
 * Prints `listening <port>` on stdout once ready. On SIGTERM/SIGINT it prints
 * one `stats <json>` line (requests, streams, and how late its own timers fired:
 * the part of a measured latency that is this server's, not the generator's)
 * and exits 0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

interface Options {
  port: number;
  holdMs: number;
  ssePath: string;
  sseFirstMs: number;
  sseEvents: number;
  sseIntervalMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'hold-ms': { type: 'string' },
      'sse-path': { type: 'string' },
      'sse-first-ms': { type: 'string' },
      'sse-events': { type: 'string' },
      'sse-interval-ms': { type: 'string' },
    },
    strict: true,
  });
  const env = process.env;
  const num = (flag: string, v: string | undefined, envName: string, dflt: number): number => {
    const raw = v ?? env[envName];
    if (raw === undefined || raw === '') return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag}: must be a number >= 0, got '${raw}'`);
    return n;
  };
  const ssePath = values['sse-path'] ?? env['TARGET_SSE_PATH'] ?? '/sse';
  if (!ssePath.startsWith('/')) throw new Error(`--sse-path: must start with '/', got '${ssePath}'`);
  const port = num('port', values.port, 'TARGET_PORT', 0);
  if (!Number.isInteger(port) || port > 65535) throw new Error(`--port: must be an integer 0-65535, got ${port}`);
  return {
    port,
    holdMs: num('hold-ms', values['hold-ms'], 'TARGET_HOLD_MS', 2000),
    ssePath,
    sseFirstMs: num('sse-first-ms', values['sse-first-ms'], 'TARGET_SSE_FIRST_MS', 0),
    sseEvents: Math.floor(num('sse-events', values['sse-events'], 'TARGET_SSE_EVENTS', 20)),
    sseIntervalMs: num('sse-interval-ms', values['sse-interval-ms'], 'TARGET_SSE_INTERVAL_MS', 100),
  };
}

/** How late timers fired (ms), kept as a bounded sample for percentiles. */
class Lateness {
  private readonly sample = new Float64Array(200_000);
  private n = 0;
  private seen = 0;
  max = 0;
  add(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    if (v > this.max) this.max = v;
    // reservoir sampling keeps memory fixed however long the run
    if (this.n < this.sample.length) this.sample[this.n++] = v;
    else {
      const j = Math.floor(Math.random() * (this.seen + 1));
      if (j < this.sample.length) this.sample[j] = v;
    }
    this.seen++;
  }
  summary(): { count: number; p50: number; p99: number; max: number } {
    const s = this.sample.slice(0, this.n).sort();
    const at = (p: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return { count: this.seen, p50: r(at(50)), p99: r(at(99)), max: r(this.max) };
  }
}

function main(): void {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`target-server: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const body = Buffer.from('ok\n');
  const late = new Lateness();
  const stats = {
    requests: 0,
    responses: 0,
    streams: 0,
    streamsDone: 0,
    aborted: 0,
    open: 0,
    maxOpen: 0,
    connections: 0,
    maxConnections: 0,
  };

  /**
   * Run fn at an absolute performance.now() time, never before it, recording
   * how late it ran. Node's timers start from libuv's cached loop time (ms,
   * taken when the loop iteration began), so under load a plain setTimeout
   * fires up to a few ms early; re-arm for whatever remains.
   * Returns a handle whose `timer` is the pending timeout (for clearTimeout).
   */
  const at = (due: number, fn: () => void): { timer: NodeJS.Timeout } => {
    const h = { timer: undefined as unknown as NodeJS.Timeout };
    const fire = () => {
      const now = performance.now();
      if (now < due) {
        h.timer = setTimeout(fire, Math.max(1, Math.ceil(due - now)));
        return;
      }
      late.add(now - due);
      fn();
    };
    h.timer = setTimeout(fire, Math.max(1, Math.ceil(due - performance.now())));
    return h;
  };

  const hold = (res: ServerResponse, t0: number) => {
    const timer = at(t0 + opts.holdMs, () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
      stats.responses++;
    });
    res.once('close', () => {
      clearTimeout(timer.timer);
      if (!res.writableFinished) stats.aborted++;
      stats.open--;
    });
  };

  const stream = (res: ServerResponse, t0: number) => {
    stats.streams++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let i = 0;
    const event = () => res.write(`id: ${i}\ndata: {"token":"t${i}","index":${i}}\n\n`);
    if (opts.sseFirstMs === 0 && opts.sseEvents > 0) {
      event(); // first event goes out with the headers, no timer in between
      i++;
    } else {
      res.flushHeaders();
    }
    let timer: { timer: NodeJS.Timeout } | undefined;
    const next = () => {
      if (i < opts.sseEvents) {
        const due = t0 + opts.sseFirstMs + i * opts.sseIntervalMs;
        timer = at(due, () => {
          event();
          i++;
          next();
        });
      } else {
        // `event: done` one interval after the last data event (or at first-ms when there are none)
        const due = t0 + opts.sseFirstMs + Math.max(0, opts.sseEvents) * opts.sseIntervalMs;
        timer = at(due, () => {
          res.end('event: done\ndata: [DONE]\n\n');
          stats.streamsDone++;
          stats.responses++;
        });
      }
    };
    next();
    res.once('close', () => {
      if (timer) clearTimeout(timer.timer);
      if (!res.writableFinished) stats.aborted++;
      stats.open--;
    });
  };

  const server = createServer(
    {
      keepAlive: true,
      requestTimeout: 120_000,
      headersTimeout: 120_000,
      keepAliveTimeout: 120_000,
      connectionsCheckingInterval: 5_000,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const t0 = performance.now();
      stats.requests++;
      if (++stats.open > stats.maxOpen) stats.maxOpen = stats.open;
      req.resume(); // drain any request body
      const path = (req.url ?? '/').split('?')[0];
      if (path === opts.ssePath) stream(res, t0);
      else hold(res, t0);
    },
  );
  // server.maxConnections is left unset: no limit.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 120_000;
  server.requestTimeout = 120_000;
  server.maxRequestsPerSocket = 0;
  server.on('connection', (socket) => {
    socket.setNoDelay(true);
    if (++stats.connections > stats.maxConnections) stats.maxConnections = stats.connections;
    socket.once('close', () => stats.connections--);
  });
  // a client resetting or timing out must never take the server down
  server.on('clientError', (_err, socket) => socket.destroy());

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    const mem = process.memoryUsage();
    const out = { signal: sig, ...stats, lateMs: late.summary(), rssMB: Math.round(mem.rss / 1048576), options: opts };
    process.stdout.write(`stats ${JSON.stringify(out)}\n`, () => process.exit(0));
    server.closeAllConnections();
    server.close();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server.on('error', (e) => {
    process.stderr.write(`target-server: ${e.message}\n`);
    process.exit(1);
  });
  server.listen({ host: '127.0.0.1', port: opts.port, backlog: 16384 }, () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    process.stdout.write(`listening ${port}\n`);
  });
}

main();
