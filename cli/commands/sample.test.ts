/**
 * `arena sample` input errors: one line naming the flag, exit 2, nothing
 * sampled. (Sampling real servers: loadtest/sampler/sampler.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRefused, runArena } from '../../testing/cli.js';

function arena(args: string[]) {
  return runArena(args, { timeoutMs: 30_000 });
}

function assertOneLine(args: string[], what: RegExp) {
  const t = Date.now();
  assertRefused(arena(args), what);
  assert.ok(Date.now() - t < 10_000, 'refused at once, nothing sampled');
}

test('sample: no target, bad durations, bad URLs, bad output: one line naming the flag, exit 2', () => {
  const redis = ['--redis', 'redis://127.0.0.1:1/0'];
  assertOneLine(
    ['sample', '--duration', '2s'],
    /^arena: sample: give at least one target: --pgbouncer, --postgres, --redis, --health or --host URL$/,
  );
  assertOneLine(['sample', ...redis], /^arena sample: required option '--duration <duration>' not specified$/);
  assertOneLine(
    ['sample', ...redis, '--duration', '3x'],
    /option '--duration <duration>' argument '3x' is invalid\. must be a duration/,
  );
  assertOneLine(['sample', ...redis, '--duration', '0s'], /--duration <duration>.*must be greater than 0/);
  assertOneLine(
    ['sample', ...redis, '--duration', '2s', '--interval', 'soon'],
    /--interval <duration>.*must be a duration/,
  );
  assertOneLine(
    ['sample', ...redis, '--duration', '2s', '--interval', '5s'],
    /--interval 5000 ms is longer than --duration 2000 ms/,
  );
  assertOneLine(
    ['sample', '--duration', '2s', '--redis', 'http://127.0.0.1:6379'],
    /--redis <url>.*must be a redis: or rediss: URL, got http:/,
  );
  assertOneLine(['sample', '--duration', '2s', '--pgbouncer', 'not a url'], /--pgbouncer <url>.*must be a URL/);
  assertOneLine(
    ['sample', '--duration', '2s', '--host', 'http://127.0.0.1/proc/stat'],
    /--host <url>.*must be a file: URL, got http:/,
  );
  assertOneLine(
    ['sample', '--duration', '2s', '--health', 'redis://x:1'],
    /--health <url>.*must be a http: or https: URL/,
  );
  assertOneLine(['sample', ...redis, '--duration', '2s', '-o', 'xml'], /-o, --output <format>.*invalid/);
});
