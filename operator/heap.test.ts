/**
 * The heap rule (heap.ts): heapLimitMiB, the cgroup files read from temp
 * files, the decision, and the re-execution with real processes: the child
 * gets the flag and the heap, its exit code and signal come back through the
 * parent, and SIGTERM sent to the parent reaches it. And the chart renders the
 * same rule into NODE_OPTIONS (helm template with the real helm).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CHART_DIR, helmAsync, helmAvailable, parseObjects, setArgs } from './packaging/tools.js';
import {
  containerMemoryLimit,
  HEAP_SIZED_ENV,
  hasHeapFlag,
  heapFlag,
  heapLimitMiB,
  MEMORY_FLAGS,
  readCgroupMemoryLimit,
} from './heap.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const dir = mkdtempSync(join(tmpdir(), 'arena-heap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('heapLimitMiB: 60% of the limit, in MiB, rounded down, at least 16', () => {
  assert.equal(heapLimitMiB(512 * MIB), 307);
  assert.equal(heapLimitMiB(256 * MIB), 153);
  assert.equal(heapLimitMiB(GIB), 614);
  assert.equal(heapLimitMiB(1.5 * GIB), 921);
  assert.equal(heapLimitMiB(2_000_000_000), 1144, 'a decimal limit (2G)');
  assert.equal(heapLimitMiB(513 * MIB + 7), 307, 'rounded down');
  assert.equal(heapLimitMiB(8 * MIB), 16, 'a floor for absurdly small limits');
});

test('readCgroupMemoryLimit: bytes from memory.max / memory.limit_in_bytes; "max", missing, empty or junk: none', () => {
  assert.equal(readCgroupMemoryLimit(file('v2', '536870912\n')), 512 * MIB);
  assert.equal(readCgroupMemoryLimit(file('v2-max', 'max\n')), undefined);
  assert.equal(readCgroupMemoryLimit(join(dir, 'absent')), undefined);
  assert.equal(readCgroupMemoryLimit(file('empty', '')), undefined);
  assert.equal(readCgroupMemoryLimit(file('zero', '0\n')), undefined);
  assert.equal(readCgroupMemoryLimit(file('junk', '12abc\n')), undefined);
  assert.equal(readCgroupMemoryLimit(dir), undefined, 'a directory');
  // cgroup v1 without a limit: LONG_MAX rounded down to a page, read as a (huge) number ...
  const v1Unlimited = readCgroupMemoryLimit(file('v1-unlimited', '9223372036854771712\n'))!;
  assert.ok(v1Unlimited > 2 ** 62);
  // ... which heapFlag treats as no limit, being above the machine's memory.
  assert.equal(heapFlag({ env: {}, execArgv: [], limitBytes: v1Unlimited, totalBytes: 64 * GIB }), undefined);
});

test('containerMemoryLimit: the first file that sets a limit (cgroup v2, then v1)', () => {
  const v2 = file('memory.max', '268435456\n');
  const v1 = file('memory.limit_in_bytes', '1073741824\n');
  const absent = join(dir, 'nope');
  assert.equal(containerMemoryLimit([v2, v1]), 256 * MIB);
  assert.equal(containerMemoryLimit([absent, v1]), GIB);
  assert.equal(containerMemoryLimit([file('max', 'max'), absent]), undefined);
  assert.equal(containerMemoryLimit([absent, absent]), undefined);
});

test('heapFlag: only under a real limit, when nothing set the old space already, and once', () => {
  const base = { env: {}, execArgv: [], limitBytes: 512 * MIB, totalBytes: 16 * GIB };
  assert.equal(heapFlag(base), '--max-old-space-size=307');
  assert.equal(heapFlag({ ...base, limitBytes: undefined }), undefined, 'no limit');
  assert.equal(heapFlag({ ...base, limitBytes: 16 * GIB }), undefined, 'a limit at the machine size limits nothing');
  assert.equal(
    heapFlag({ ...base, env: { NODE_OPTIONS: '--enable-source-maps --max-old-space-size=200' } }),
    undefined,
  );
  assert.equal(heapFlag({ ...base, env: { NODE_OPTIONS: '--enable-source-maps' } }), '--max-old-space-size=307');
  assert.equal(heapFlag({ ...base, execArgv: ['--max_old_space_size=100'] }), undefined, "node's own flag");
  assert.equal(heapFlag({ ...base, env: { [HEAP_SIZED_ENV]: '--max-old-space-size=307' } }), undefined, 'once');
  assert.equal(hasHeapFlag(undefined, []), false);
  assert.equal(hasHeapFlag('--max-semi-space-size=16', []), false);
});

/** A script that sizes its heap from the limit in argv[2], then reports and acts as argv[3] says. */
const PROBE = file(
  'probe.mjs',
  `import { getHeapStatistics } from 'node:v8';
import { sizeHeapFromContainerLimit } from ${JSON.stringify(new URL('./heap.js', import.meta.url).href)};
await sizeHeapFromContainerLimit([process.argv[2]]);
const mode = process.argv[3];
if (mode === 'wait') process.on('SIGTERM', () => { console.log('TERM'); process.exit(3); });
console.log(JSON.stringify({
  pid: process.pid, ppid: process.ppid, heapMiB: getHeapStatistics().heap_size_limit / 2 ** 20,
  sized: process.env.${HEAP_SIZED_ENV} ?? null, argv: process.argv.slice(3), execArgv: process.execArgv,
}));
if (mode === 'exit') process.exit(7);
if (mode === 'wait') setInterval(() => undefined, 1000);
if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
`,
);

interface Probe {
  pid: number;
  ppid: number;
  heapMiB: number;
  sized: string | null;
  argv: string[];
  execArgv: string[];
}

/** Run the probe; `onReport` sees its report as soon as it is printed. */
function runProbe(
  limitFile: string,
  mode: 'exit' | 'wait' | 'kill',
  env: NodeJS.ProcessEnv = {},
  onReport: (p: Probe, launched: number) => void = () => undefined,
): Promise<{ report: Probe; lines: string[]; code: number | null; signal: NodeJS.Signals | null; launched: number }> {
  const proc = spawn(process.execPath, [PROBE, limitFile, mode, '--some', 'arg'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '', [HEAP_SIZED_ENV]: undefined, ...env },
  });
  const lines: string[] = [];
  createInterface(proc.stdout).on('line', (l) => {
    lines.push(l);
    if (lines.length === 1) onReport(JSON.parse(l) as Probe, proc.pid!);
  });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) =>
      resolve({ report: JSON.parse(lines[0] ?? 'null') as Probe, lines, code, signal, launched: proc.pid! }),
    );
  });
}

test('under a 512 MiB limit: re-executed once with --max-old-space-size=307, same arguments, exit code passed back', async () => {
  const r = await runProbe(file('limit-512', `${512 * MIB}\n`), 'exit');
  assert.equal(r.code, 7, "the child's exit code");
  assert.equal(r.report.sized, '--max-old-space-size=307');
  assert.notEqual(r.report.pid, r.launched, 'the report comes from a child ...');
  assert.equal(r.report.ppid, r.launched, '... of the launched process');
  assert.ok(r.report.execArgv.includes('--max-old-space-size=307'));
  for (const f of MEMORY_FLAGS) assert.ok(r.report.execArgv.includes(f), `the child runs with ${f}`);
  assert.deepEqual(r.report.argv, ['exit', '--some', 'arg']);
  // heap_size_limit is the old space plus the young generation (semi-spaces).
  assert.ok(r.report.heapMiB >= 307 && r.report.heapMiB <= 307 + 64, `heap limit ${r.report.heapMiB} MiB`);
  assert.equal(r.lines.length, 1, 'one report: the child did not re-execute again');
});

test('SIGTERM to the parent reaches the child (graceful shutdown), and a child killed by a signal kills the parent alike', async () => {
  const limit = file('limit-256', `${256 * MIB}\n`);
  let childPid = 0;
  const r = await runProbe(limit, 'wait', {}, (p, launched) => {
    childPid = p.pid;
    process.kill(launched, 'SIGTERM');
  });
  assert.notEqual(childPid, r.launched);
  assert.equal(r.report.sized, '--max-old-space-size=153');
  assert.deepEqual(r.lines.slice(1), ['TERM'], 'the child handled SIGTERM');
  assert.equal(r.code, 3, "the parent exits with the child's code");

  const k = await runProbe(limit, 'kill');
  assert.equal(k.signal, 'SIGKILL', 'the parent dies of the signal that killed the child');
});

test('no re-execution without a limit or when NODE_OPTIONS already sets the old space', async () => {
  const none = await runProbe(file('limit-max', 'max\n'), 'exit');
  assert.equal(none.code, 7);
  assert.deepEqual([none.report.pid, none.report.sized], [none.launched, null]);

  const own = await runProbe(file('limit-1g', `${GIB}\n`), 'exit', { NODE_OPTIONS: '--max-old-space-size=200' });
  assert.equal(own.code, 7);
  assert.deepEqual([own.report.pid, own.report.sized], [own.launched, null]);
  assert.ok(own.report.heapMiB >= 200 && own.report.heapMiB < 300, `NODE_OPTIONS wins: ${own.report.heapMiB} MiB`);
});

/** NODE_OPTIONS of the operator container as `helm template` renders it with `values` (undefined: not set). */
async function chartNodeOptions(values: Record<string, unknown>): Promise<string | undefined> {
  const r = await helmAsync(['template', 'x', CHART_DIR, ...setArgs(values)]);
  assert.equal(r.code, 0, r.err);
  const dep = parseObjects(r.out).find((o) => o.kind === 'Deployment')!;
  const env = dep.spec.template.spec.containers[0].env as { name: string; value?: string }[];
  const found = env.filter((e) => e.name === 'NODE_OPTIONS');
  assert.ok(found.length <= 1, 'NODE_OPTIONS at most once');
  return found[0]?.value;
}

test('the chart renders the same rule into NODE_OPTIONS, from resources.limits.memory in any quantity form', async (t) => {
  const missing = helmAvailable();
  if (missing) return t.skip(missing);
  const cases: [unknown, number][] = [
    ['512Mi', 512 * MIB],
    ['1Gi', GIB],
    ['1.5Gi', 1.5 * GIB],
    ['2G', 2e9],
    ['768M', 768e6],
    ['5e8', 5e8],
    [536870912, 512 * MIB],
    ['64Mi', 64 * MIB],
  ];
  const rendered = await Promise.all(cases.map(([memory]) => chartNodeOptions({ 'resources.limits.memory': memory })));
  cases.forEach(([memory, bytes], i) =>
    assert.equal(
      rendered[i],
      [`--max-old-space-size=${heapLimitMiB(bytes)}`, ...MEMORY_FLAGS].join(' '),
      `limits.memory ${String(memory)}`,
    ),
  );
  assert.equal(
    await chartNodeOptions({}),
    ['--max-old-space-size=307', ...MEMORY_FLAGS].join(' '),
    "the chart's default limit, 512Mi, with the operator's memory flags",
  );
  assert.equal(await chartNodeOptions({ 'resources.limits': null }), undefined, 'no limit: no flag');
  const own = [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=99 --enable-source-maps' }];
  assert.equal(await chartNodeOptions({ 'operator.extraEnv': own }), own[0]!.value, 'the own NODE_OPTIONS wins');
});
