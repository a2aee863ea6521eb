/** Threshold parsing (each form, each error line), evaluation per metric type, merging and files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetricLookup, MetricValue } from './metric-types.js';
import {
  evaluateThresholds,
  loadThresholdsFile,
  mergeThresholds,
  parseThresholds,
  ThresholdError,
  type ThresholdSpec,
} from './thresholds.js';

/** The one-line message and path of the ThresholdError `fn` throws. */
function errorOf(fn: () => unknown): { message: string; path: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ThresholdError, `expected a ThresholdError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `not one line: ${e.message}`);
    return { message: e.message, path: e.path };
  }
  assert.fail('expected a ThresholdError, nothing was thrown');
}

const only = (raw: unknown): ThresholdSpec => {
  const specs = parseThresholds(raw);
  assert.equal(specs.length, 1);
  return specs[0] as ThresholdSpec;
};

test('parse: a bare metric with a string expression', () => {
  assert.deepEqual(parseThresholds({ http_req_duration: ['p(99)<500'] }), [
    {
      selector: 'http_req_duration',
      metric: 'http_req_duration',
      tags: {},
      expression: 'p(99)<500',
      aggregation: 'p(99)',
      op: '<',
      limit: 500,
    },
  ]);
});

test('parse: tags, several tags, whitespace, double- and single-quoted values, a ":" in a bare value', () => {
  assert.deepEqual(only({ 'http_req_duration{scenario:read}': ['avg<200'] }).tags, { scenario: 'read' });
  const two = only({ ' http_req_duration { scenario : read , expected_response:true } ': ['med <= 100'] });
  assert.equal(two.metric, 'http_req_duration');
  assert.deepEqual(two.tags, { scenario: 'read', expected_response: 'true' });
  assert.equal(two.selector, 'http_req_duration{scenario:read,expected_response:true}');
  assert.deepEqual(Object.keys(two.tags), ['scenario', 'expected_response']);
  const quoted = only({ 'saturation{pool:"pgbouncer_server"}': ['max<0.9'] });
  assert.deepEqual(quoted.tags, { pool: 'pgbouncer_server' });
  assert.equal(quoted.selector, 'saturation{pool:pgbouncer_server}');
  const comma = only({ 'http_reqs{name:"a, b",kind:\'x\'}': ['count>0'] });
  assert.deepEqual(comma.tags, { name: 'a, b', kind: 'x' });
  assert.equal(comma.selector, 'http_reqs{name:"a, b",kind:x}');
  assert.deepEqual(only({ 'http_reqs{url:http://127.0.0.1:8000/x}': ['count>0'] }).tags, {
    url: 'http://127.0.0.1:8000/x',
  });
  assert.deepEqual(only({ 'http_reqs{status:""}': ['count==0'] }).tags, { status: '' });
  const proto = only({ 'http_reqs{__proto__:x}': ['count==0'] });
  assert.deepEqual(Object.entries(proto.tags), [['__proto__', 'x']]);
  assert.equal(Object.getPrototypeOf(proto.tags), Object.prototype);
});

test('parse: every operator and aggregation; spaces; numbers; normalised expression', () => {
  const cases: [string, string, string, number, string][] = [
    ['p(99) < 500', 'p(99)', '<', 500, 'p(99)<500'],
    ['p( 99.9 )<=1.5e3', 'p(99.9)', '<=', 1500, 'p(99.9)<=1500'],
    ['p(0)>=0', 'p(0)', '>=', 0, 'p(0)>=0'],
    ['p(100)>-1', 'p(100)', '>', -1, 'p(100)>-1'],
    ['avg==200', 'avg', '==', 200, 'avg==200'],
    ['min === 0.50', 'min', '===', 0.5, 'min===0.5'],
    ['max!=3', 'max', '!=', 3, 'max!=3'],
    ['med<.5', 'med', '<', 0.5, 'med<0.5'],
    ['count>=10', 'count', '>=', 10, 'count>=10'],
    ['rate<0.01', 'rate', '<', 0.01, 'rate<0.01'],
    ['value>+2', 'value', '>', 2, 'value>2'],
  ];
  for (const [text, aggregation, op, limit, expression] of cases) {
    const s = only({ m: [text] });
    assert.deepEqual([s.aggregation, s.op, s.limit, s.expression], [aggregation, op, limit, expression], text);
  }
});

test('parse: object items; abortOnFail false and delayAbortEval accepted; empty arrays; order kept', () => {
  const specs = parseThresholds({
    http_req_failed: [
      { threshold: 'rate<0.01' },
      { threshold: 'rate<0.05', abortOnFail: false, delayAbortEval: '10s' },
    ],
    'http_req_duration{scenario:read}': [],
    iterations: ['count>100', { threshold: 'rate>5' }],
  });
  assert.deepEqual(
    specs.map((s) => `${s.selector} ${s.expression}`),
    ['http_req_failed rate<0.01', 'http_req_failed rate<0.05', 'iterations count>100', 'iterations rate>5'],
  );
  assert.deepEqual(parseThresholds({}), []);
});

test('parse errors: one line naming the path and the problem', () => {
  const cases: [unknown, string, string][] = [
    [
      { http_req_duration: ['p99<500'] },
      'thresholds["http_req_duration"][0]',
      'thresholds["http_req_duration"][0]: "p99<500": expected an aggregation such as p(99), avg, rate, count',
    ],
    [
      { 'http_req_duration{scenario:read}': ['avg<1', 'mean<5'] },
      'thresholds["http_req_duration{scenario:read}"][1]',
      'thresholds["http_req_duration{scenario:read}"][1]: "mean<5": expected an aggregation such as p(99), avg, rate, count',
    ],
    [
      { m: ['<5'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "<5": expected an aggregation such as p(99), avg, rate, count before "<"',
    ],
    [
      { m: ['p(101)<5'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "p(101)<5": the percentile in p(...) must be a number from 0 to 100, got "101"',
    ],
    [
      { m: ['p(x)<5'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "p(x)<5": the percentile in p(...) must be a number from 0 to 100, got "x"',
    ],
    [
      { m: ['p(99)'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "p(99)": expected a comparison such as p(99)<500 (operators: <, <=, >, >=, ==, ===, !=)',
    ],
    [
      { m: ['avg=>5'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "avg=>5": unknown operator "=>" (expected one of <, <=, >, >=, ==, ===, !=)',
    ],
    [
      { m: ['avg=5'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "avg=5": unknown operator "=" (expected one of <, <=, >, >=, ==, ===, !=)',
    ],
    [{ m: ['avg<'] }, 'thresholds["m"][0]', 'thresholds["m"][0]: "avg<": expected a number after "<"'],
    [{ m: ['avg<abc'] }, 'thresholds["m"][0]', 'thresholds["m"][0]: "avg<abc": expected a number after "<", got "abc"'],
    [
      { m: ['p(95)<500ms'] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: "p(95)<500ms": expected a number after "<", got "500ms"' +
        ' (write a plain number: durations are in milliseconds, rates 0..1)',
    ],
    [
      { m: [{ threshold: 'avg<1', abortOnFail: true }] },
      'thresholds["m"][0].abortOnFail',
      'thresholds["m"][0].abortOnFail: not supported by arena (the run always completes)',
    ],
    [
      { http_req_duration: [{ threshold: 'p(99)<500', abortOnFail: true, delayAbortEval: '10s' }] },
      'thresholds["http_req_duration"][0].abortOnFail',
      'thresholds["http_req_duration"][0].abortOnFail: not supported by arena (the run always completes)',
    ],
    [
      { m: [{ threshold: 'avg<1', abortOnFail: 'yes' }] },
      'thresholds["m"][0].abortOnFail',
      'thresholds["m"][0].abortOnFail: expected a boolean, got a string',
    ],
    [
      { m: [{ threshold: 'avg<1', delayAbortEval: 10 }] },
      'thresholds["m"][0].delayAbortEval',
      'thresholds["m"][0].delayAbortEval: expected a string such as "10s", got a number',
    ],
    [
      { m: [{ treshold: 'avg<1' }] },
      'thresholds["m"][0].treshold',
      'thresholds["m"][0].treshold: unknown field (expected threshold, abortOnFail, delayAbortEval)',
    ],
    [
      { m: [{ abortOnFail: false }] },
      'thresholds["m"][0]',
      'thresholds["m"][0]: missing field "threshold" (e.g. {threshold: "p(99)<500"})',
    ],
    [
      { m: [{ threshold: 5 }] },
      'thresholds["m"][0].threshold',
      'thresholds["m"][0].threshold: expected a string such as "p(99)<500", got a number',
    ],
    [
      { m: ['avg<1', 7] },
      'thresholds["m"][1]',
      'thresholds["m"][1]: expected a string such as "p(99)<500" or an object {threshold: ...}, got a number',
    ],
    [
      { m: 'avg<1' },
      'thresholds["m"]',
      'thresholds["m"]: expected an array of expressions such as ["p(99)<500"], got a string',
    ],
    [
      ['avg<1'],
      'thresholds',
      'thresholds: expected an object mapping metric selectors to arrays of expressions, got an array',
    ],
    [null, 'thresholds', 'thresholds: expected an object mapping metric selectors to arrays of expressions, got null'],
  ];
  for (const [raw, path, message] of cases) {
    assert.deepEqual(
      errorOf(() => parseThresholds(raw)),
      { path, message },
    );
  }
  assert.equal(errorOf(() => parseThresholds({ m: ['x'] }, 'options.thresholds')).path, 'options.thresholds["m"][0]');
});

test('selector errors', () => {
  const cases: [string, string][] = [
    [
      'http_req_duration{scenario:read',
      '"http_req_duration{scenario:read": the tag list must end the selector with "}"',
    ],
    ['http_req_duration}', '"http_req_duration}": "}" without "{"'],
    [
      'http_req_duration{}',
      '"http_req_duration{}": empty tag list "{}" (leave out the braces to select the whole metric)',
    ],
    [
      'http_req_duration{scenario}',
      '"http_req_duration{scenario}": tag "scenario" has no value (expected {name:value,...})',
    ],
    [
      'http_req_duration{scenario:}',
      '"http_req_duration{scenario:}": tag "scenario" has an empty value (quote it, "", to select the empty value)',
    ],
    ['http_req_duration{:read}', '"http_req_duration{:read}": a tag has no name (expected {name:value,...})'],
    ['http_req_duration{a:1,}', '"http_req_duration{a:1,}": empty tag after ","'],
    ['http_req_duration{a:1,a:2}', '"http_req_duration{a:1,a:2}": tag "a" given twice'],
    ['http_req_duration{a:"x}', '"http_req_duration{a:\\"x}": tag "a": unterminated "'],
    [
      'http_req_duration{a:"x"y}',
      '"http_req_duration{a:\\"x\\"y}": tag "a": expected "," or "}" after the quoted value',
    ],
    ['{scenario:read}', '"{scenario:read}": expected a metric name before "{"'],
    ['  ', '"  ": expected a metric name'],
    [
      'http req;duration',
      '"http req;duration": invalid metric name "http req;duration" (at most 128 letters, digits, spaces and ._!?/&#()<>%-)',
    ],
  ];
  for (const [key, problem] of cases) {
    const path = `thresholds[${JSON.stringify(key)}]`;
    assert.deepEqual(
      errorOf(() => parseThresholds({ [key]: ['avg<1'] })),
      { path, message: `${path}: ${problem}` },
      key,
    );
  }
});

/** A trend over explicit values (nearest-rank percentiles), as the engine's HDR summary would give. */
function trend(vals: number[]): MetricValue {
  const sorted = [...vals].sort((a, b) => a - b);
  return {
    type: 'trend',
    count: vals.length,
    min: sorted[0] ?? 0,
    max: sorted[sorted.length - 1] ?? 0,
    mean: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : 0,
    percentile: (p) => sorted[Math.max(0, Math.ceil((p * sorted.length) / 100 - 1e-9) - 1)] ?? 0, // rank ceil(p/100 x n)
  };
}

const key = (metric: string, tags: Readonly<Record<string, string>>): string =>
  JSON.stringify([
    metric,
    Object.keys(tags)
      .sort()
      .map((k) => [k, tags[k]]),
  ]);

/** A lookup over exact (metric, tags) combinations. */
function lookupOf(entries: [string, Record<string, string>, MetricValue][]): MetricLookup {
  const m = new Map(entries.map(([metric, tags, v]) => [key(metric, tags), v]));
  return (metric, tags) => m.get(key(metric, tags));
}

// 1000 durations 1..1000 ms: p(99) = 990, p(99.9) = 999, med = 500, avg = 500.5
const durations = Array.from({ length: 1000 }, (_, i) => i + 1);
const run = lookupOf([
  ['http_req_duration', {}, trend(durations)],
  ['http_req_duration', { scenario: 'read' }, trend([10, 20, 30, 812.4])],
  ['http_req_duration', { scenario: 'read', expected_response: 'true' }, trend([10, 20, 30])],
  ['http_req_failed', {}, { type: 'rate', rate: 0.02, trues: 2, total: 100 }],
  ['http_reqs', {}, { type: 'counter', count: 600, ratePerSecond: 10 }],
  ['dropped_iterations', {}, { type: 'counter', count: 0, ratePerSecond: 0 }],
  [
    'saturation',
    { pool: 'pgbouncer_server' },
    {
      type: 'gauge',
      value: 0.5,
      min: 0.1,
      max: 0.97,
      percentile: (p) => (p >= 95 ? 0.9 : 0.4),
    },
  ],
  ['ttft', { scenario: 'idle' }, trend([])],
  ['checks', {}, { type: 'rate', rate: 0, trues: 0, total: 0 }],
]);

function outcomes(raw: Record<string, string[]>): string[] {
  return evaluateThresholds(parseThresholds(raw), run).map((o) => o.message);
}

test('evaluate: trend aggregations incl. p(99.9), med, count and ==', () => {
  assert.deepEqual(
    outcomes({
      http_req_duration: [
        'p(99)<990',
        'p(99)<=990',
        'p(99.9)==999',
        'p(99.9)<999',
        'med==500',
        'avg==500.5',
        'avg>500.5',
        'min===1',
        'max!=1000',
        'count>=1000',
        'p(0)==1',
        'p(100)==1000',
      ],
    }),
    [
      'http_req_duration p(99)<990: 990 (fail)',
      'http_req_duration p(99)<=990: 990 (pass)',
      'http_req_duration p(99.9)==999: 999 (pass)',
      'http_req_duration p(99.9)<999: 999 (fail)',
      'http_req_duration med==500: 500 (pass)',
      'http_req_duration avg==500.5: 500.5 (pass)',
      'http_req_duration avg>500.5: 500.5 (fail)',
      'http_req_duration min===1: 1 (pass)',
      'http_req_duration max!=1000: 1000 (fail)',
      'http_req_duration count>=1000: 1000 (pass)',
      'http_req_duration p(0)==1: 1 (pass)',
      'http_req_duration p(100)==1000: 1000 (pass)',
    ],
  );
});

test('evaluate: outcome fields (status, value, the spec)', () => {
  const [o] = evaluateThresholds(parseThresholds({ 'http_req_duration{scenario:read}': ['p(99) < 500'] }), run);
  assert.deepEqual(o, {
    selector: 'http_req_duration{scenario:read}',
    metric: 'http_req_duration',
    tags: { scenario: 'read' },
    expression: 'p(99)<500',
    aggregation: 'p(99)',
    op: '<',
    limit: 500,
    status: 'fail',
    value: 812.4,
    message: 'http_req_duration{scenario:read} p(99)<500: 812.4 (fail)',
  });
});

test('evaluate: tags are matched exactly (no subset or superset match)', () => {
  assert.deepEqual(
    outcomes({
      'http_req_duration{scenario:read}': ['max==812.4'],
      'http_req_duration{expected_response:true,scenario:"read"}': ['max==30'],
      'http_req_duration{scenario:write}': ['max<1000'],
      'http_req_duration{expected_response:true}': ['max<1000'],
      saturation: ['max<1'],
    }),
    [
      'http_req_duration{scenario:read} max==812.4: 812.4 (pass)',
      'http_req_duration{expected_response:true,scenario:read} max==30: 30 (pass)',
      'http_req_duration{scenario:write} max<1000: no such metric in this run (missing)',
      'http_req_duration{expected_response:true} max<1000: no such metric in this run (missing)',
      'saturation max<1: no such metric in this run (missing)',
    ],
  );
});

test('evaluate: rate, counter (count and per-second rate) and gauge (value, min, max, p(N))', () => {
  assert.deepEqual(
    outcomes({
      http_req_failed: ['rate<0.01', 'rate<=0.02'],
      http_reqs: ['count==600', 'rate>=10', 'rate>10'],
      dropped_iterations: ['count==0'],
      'saturation{pool:pgbouncer_server}': ['value<0.6', 'min>0.2', 'max<0.95', 'p(95)<0.95', 'p(50)>0.5'],
    }),
    [
      'http_req_failed rate<0.01: 0.02 (fail)',
      'http_req_failed rate<=0.02: 0.02 (pass)',
      'http_reqs count==600: 600 (pass)',
      'http_reqs rate>=10: 10 (pass)',
      'http_reqs rate>10: 10 (fail)',
      'dropped_iterations count==0: 0 (pass)',
      'saturation{pool:pgbouncer_server} value<0.6: 0.5 (pass)',
      'saturation{pool:pgbouncer_server} min>0.2: 0.1 (fail)',
      'saturation{pool:pgbouncer_server} max<0.95: 0.97 (fail)',
      'saturation{pool:pgbouncer_server} p(95)<0.95: 0.9 (pass)',
      'saturation{pool:pgbouncer_server} p(50)>0.5: 0.4 (fail)',
    ],
  );
});

test('evaluate: an aggregation that does not fit the type fails with a message, value null', () => {
  const raw = {
    http_req_failed: ['p(99)<1', 'count<5'],
    http_reqs: ['avg<1', 'value>0'],
    'saturation{pool:pgbouncer_server}': ['rate<1', 'avg<1'],
    http_req_duration: ['rate<1', 'value<1'],
  };
  const os = evaluateThresholds(parseThresholds(raw), run);
  assert.deepEqual(
    os.map((o) => [o.status, o.value]),
    Array(8).fill(['fail', null]),
  );
  assert.deepEqual(
    os.map((o) => o.message),
    [
      'http_req_failed p(99)<1: p(99) does not apply to a rate metric (a rate has rate) (fail)',
      'http_req_failed count<5: count does not apply to a rate metric (a rate has rate) (fail)',
      'http_reqs avg<1: avg does not apply to a counter metric (a counter has count, rate (per second)) (fail)',
      'http_reqs value>0: value does not apply to a counter metric (a counter has count, rate (per second)) (fail)',
      'saturation{pool:pgbouncer_server} rate<1: rate does not apply to a gauge metric (a gauge has value, min, max, p(N)) (fail)',
      'saturation{pool:pgbouncer_server} avg<1: avg does not apply to a gauge metric (a gauge has value, min, max, p(N)) (fail)',
      'http_req_duration rate<1: rate does not apply to a trend metric (a trend has avg, min, max, med, count, p(N)) (fail)',
      'http_req_duration value<1: value does not apply to a trend metric (a trend has avg, min, max, med, count, p(N)) (fail)',
    ],
  );
});

test('evaluate: missing metric and empty trend/rate are status missing with value null; an empty trend still counts', () => {
  const os = evaluateThresholds(
    parseThresholds({
      nonexistent_metric: ['count>0'],
      'ttft{scenario:idle}': ['p(99)<100', 'count==0'],
      checks: ['rate>0.99'],
    }),
    run,
  );
  assert.deepEqual(
    os.map((o) => [o.status, o.value, o.message]),
    [
      ['missing', null, 'nonexistent_metric count>0: no such metric in this run (missing)'],
      ['missing', null, 'ttft{scenario:idle} p(99)<100: no samples in this run (missing)'],
      ['pass', 0, 'ttft{scenario:idle} count==0: 0 (pass)'],
      ['missing', null, 'checks rate>0.99: no samples in this run (missing)'],
    ],
  );
});

test('evaluate: NaN fails; message rounding (2 decimals from 1 up, 3 significant digits below 1)', () => {
  const lookup: MetricLookup = (m) =>
    m === 'nan'
      ? { type: 'gauge', value: NaN, min: 0, max: 0, percentile: () => 0 }
      : { type: 'gauge', value: m === 'big' ? 1234.5678 : 0.0012345, min: 0, max: 0, percentile: () => 0 };
  const os = evaluateThresholds(
    parseThresholds({ nan: ['value<1'], big: ['value<2000'], small: ['value<0.01'] }),
    lookup,
  );
  assert.deepEqual(
    os.map((o) => [o.status, o.value, o.message]),
    [
      ['fail', null, 'nan value<1: the value is not a number (fail)'],
      ['pass', 1234.5678, 'big value<2000: 1234.57 (pass)'],
      ['pass', 0.0012345, 'small value<0.01: 0.00123 (pass)'],
    ],
  );
});

test('evaluate: the lookup receives the metric name and exactly the parsed tags', () => {
  const calls: [string, Record<string, string>][] = [];
  evaluateThresholds(parseThresholds({ 'x{ a : "1" ,b:2}': ['avg<1'], y: ['count<1'] }), (m, t) => {
    calls.push([m, { ...t }]);
    return undefined;
  });
  assert.deepEqual(calls, [
    ['x', { a: '1', b: '2' }],
    ['y', {}],
  ]);
});

test('mergeThresholds: later sets add; identical selector+expression kept once at its first position', () => {
  const base = parseThresholds({ http_req_duration: ['p(99)<500'], 'http_req_duration{a:1,b:2}': ['avg<1'] });
  const extra = parseThresholds({
    http_req_duration: ['p(99) < 500', 'p(99)<300', 'p(99)<=500'],
    'http_req_duration{ b:"2", a:1 }': ['avg<1.0'],
    http_req_failed: ['rate<0.01'],
  });
  const again = parseThresholds({ http_req_failed: ['rate<0.01'], http_reqs: ['count==1'] });
  const eq = parseThresholds({ http_reqs: ['count===1'] });
  assert.deepEqual(
    mergeThresholds(base, extra, again, eq).map((s) => `${s.selector} ${s.expression}`),
    [
      'http_req_duration p(99)<500',
      'http_req_duration{a:1,b:2} avg<1',
      'http_req_duration p(99)<300',
      'http_req_duration p(99)<=500',
      'http_req_failed rate<0.01',
      'http_reqs count==1',
    ],
  );
  assert.deepEqual(mergeThresholds(), []);
});

test('loadThresholdsFile: YAML, JSON, the {thresholds: ...} wrapper, and file errors starting with the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'thresholds-'));
  try {
    const f = (name: string, text: string): string => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const yaml = f(
      't.yaml',
      [
        '# capacity gate',
        'http_req_duration{scenario:read}: ["p(99)<500", "med<100"]',
        'http_req_failed:',
        '  - threshold: rate<0.01',
        '    abortOnFail: false',
        '',
      ].join('\n'),
    );
    assert.deepEqual(
      loadThresholdsFile(yaml).map((s) => `${s.selector} ${s.expression}`),
      [
        'http_req_duration{scenario:read} p(99)<500',
        'http_req_duration{scenario:read} med<100',
        'http_req_failed rate<0.01',
      ],
    );
    const json = f('t.json', JSON.stringify({ thresholds: { 'saturation{pool:redis}': ['max<0.8'] } }));
    assert.deepEqual(
      loadThresholdsFile(json).map((s) => [s.metric, s.tags, s.expression]),
      [['saturation', { pool: 'redis' }, 'max<0.8']],
    );

    const fileError = (p: string): string => {
      try {
        loadThresholdsFile(p);
      } catch (e) {
        assert.ok(e instanceof ThresholdError);
        assert.equal(e.file, p);
        assert.ok(!e.message.includes('\n'), e.message);
        return e.message;
      }
      return assert.fail(`no error for ${p}`);
    };
    const missing = join(dir, 'nope.yaml');
    assert.equal(fileError(missing), `${missing}: no such file`);
    mkdirSync(join(dir, 'd'));
    assert.equal(fileError(join(dir, 'd')), `${join(dir, 'd')}: is a directory`);
    const bad = f('bad.yaml', 'a: [1\n');
    assert.equal(
      fileError(bad),
      `${bad}: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1`,
    );
    const dup = f('dup.yaml', 'a: ["avg<1"]\na: ["avg<2"]\n');
    assert.equal(fileError(dup), `${dup}: invalid YAML: Map keys must be unique at line 2, column 1`);
    const empty = f('empty.yaml', '');
    assert.equal(
      fileError(empty),
      `${empty}: expected a mapping of metric selectors to arrays of expressions (or {thresholds: ...}), got null`,
    );
    const list = f('list.yaml', '- p(99)<500\n');
    assert.equal(
      fileError(list),
      `${list}: expected a mapping of metric selectors to arrays of expressions (or {thresholds: ...}), got an array`,
    );
    const extraKey = f('opts.yaml', 'thresholds: {m: ["avg<1"]}\nscenarios: {}\n');
    assert.equal(
      fileError(extraKey),
      `${extraKey}: scenarios: unexpected top-level key (a thresholds file holds only "thresholds")`,
    );
    const badExpr = f('expr.yaml', 'thresholds:\n  http_req_duration: ["p99<500"]\n');
    assert.equal(
      fileError(badExpr),
      `${badExpr}: thresholds["http_req_duration"][0]: "p99<500": expected an aggregation such as p(99), avg, rate, count`,
    );
    const abort = f('abort.json', '{"http_req_duration": [{"threshold": "p(99)<500", "abortOnFail": true}]}');
    assert.equal(
      fileError(abort),
      `${abort}: thresholds["http_req_duration"][0].abortOnFail: not supported by arena (the run always completes)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
