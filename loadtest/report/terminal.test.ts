/**
 * The terminal report prints the numbers of result.json: a real run's table
 * output is parsed back (cells to numbers, in the unit printed) and compared
 * with the result the same run wrote, within the rounding of the display.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../../testing/servers.js';
import { shortLoadTest } from '../../testing/loadtest-run.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ latencyMs: 5 });
});
after(() => server.close());

/** A printed duration ("12.3 ms", "4.56 ms", "1.20 s") in ms, and the half-unit of its last digit. */
function parseMs(cell: string): { ms: number; halfUnit: number } {
  const m = /^([\d.]+) (ms|s)$/.exec(cell.trim());
  assert.ok(m, `a duration: ${JSON.stringify(cell)}`);
  const decimals = m[1]!.split('.')[1]?.length ?? 0;
  const scale = m[2] === 's' ? 1000 : 1;
  return { ms: Number(m[1]) * scale, halfUnit: (0.5 * scale) / 10 ** decimals };
}

/** The cells of the table row that starts with `name` (cli-table3's box drawing). */
function row(text: string, name: string): string[] {
  const line = text.split('\n').find((l) => l.startsWith('│') && l.split('│')[1]!.trim() === name);
  assert.ok(line, `a row for ${name}`);
  return line
    .split('│')
    .slice(1, -1)
    .map((c) => c.trim());
}

test('terminal report: per-scenario requests, rate, P50/P95/P99/max, errors, goodput are the numbers of result.json', async () => {
  const run = await shortLoadTest({
    target: server.url,
    requests:
      'requests:\n  - name: fast\n    path: /hold?ms=5\n    objectives: {http_req_duration: 50ms}\n' +
      '  - name: bad\n    path: /status/500\n    weight: 0.2\n',
    rate: 80,
    duration: '3s',
    extra: ['-o', 'table'],
  });
  const r = run.result!;
  assert.ok(r, run.run.err);
  for (const name of ['fast', 'bad']) {
    const s = r.scenarios[name]!;
    const cells = row(run.run.out, name);
    // scenario, kind, reqs, req/s, P50, P95, P99, max, TTFT P99, ITL P99, errors, dropped
    assert.equal(Number(cells[2]!.replace(/,/g, '')), s.counters.http_reqs, `${name} reqs`);
    assert.ok(Math.abs(Number(cells[3]) - s.rates.http_reqs) <= 0.05, `${name} req/s ${cells[3]}`);
    const d = s.metrics['http_req_duration']!;
    const pairs: [string, number][] = [
      [cells[4]!, d.p50],
      [cells[5]!, d.p95],
      [cells[6]!, d.p99],
      [cells[7]!, d.max],
    ];
    for (const [cell, value] of pairs) {
      const p = parseMs(cell);
      assert.ok(Math.abs(p.ms - value) <= p.halfUnit + 1e-9, `${name}: printed ${cell}, result ${value} ms`);
    }
    const errPct = s.http_req_failed * 100;
    assert.ok(Math.abs(Number(cells[10]!.replace('%', '')) - errPct) <= 0.05, `${name} errors ${cells[10]}`);
  }
  assert.equal(r.scenarios['bad']!.http_req_failed, 1, 'every /status/500 failed');
  const g = r.scenarios['fast']!.goodput!;
  const cells = row(run.run.out.slice(run.run.out.indexOf('Goodput')), 'fast');
  // scenario, objectives, good, goodput, good/s
  assert.equal(Number(cells[2]!.replace(/,/g, '')), g.good);
  assert.ok(Math.abs(Number(cells[3]!.replace('%', '')) - 100 * g.share) <= 0.05);
  assert.ok(Math.abs(Number(cells[4]) - g.ratePerSecond) <= 0.05);
  assert.match(cells[1]!, /http_req_duration <= 50\.0 ms/);
});
