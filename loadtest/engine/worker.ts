/**
 * Entry point of an engine worker thread (node:worker_threads). workerData =
 * `{config: RunConfig, index}`. Messages in: `{type: 'start', startAt}`,
 * `{type: 'stop', graceMs}`. Messages out: `ready`, `second` (SecondReport),
 * `done` (FinalReport), `fatal` (an internal error, with its stack).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { RunConfig } from './config.js';
import { Executor } from './executor.js';

const { config, index } = workerData as { config: RunConfig; index: number };
const port = parentPort!;

try {
  const ex = new Executor(config, index, (report) => {
    const buffers = Object.values(report.scenarios).flatMap((d) =>
      Object.values(d.trends).map((a) => a.buffer as ArrayBuffer),
    );
    port.postMessage({ type: 'second', report }, buffers);
  });
  port.on('message', (msg: { type: 'start'; startAt: number } | { type: 'stop'; graceMs?: number }) => {
    if (msg.type === 'start') {
      ex.run(msg.startAt).then(
        (report) => port.postMessage({ type: 'done', report }),
        (e: unknown) => port.postMessage({ type: 'fatal', message: (e as Error).message, stack: (e as Error).stack }),
      );
    } else if (msg.type === 'stop') ex.stop(msg.graceMs);
  });
  port.postMessage({ type: 'ready' });
} catch (e) {
  port.postMessage({ type: 'fatal', message: (e as Error).message, stack: (e as Error).stack });
}
