/** OS limits: parsing, the in-flight bound, the capacity check and the ulimit re-exec (run for real). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  checkCapacity,
  maxInFlight,
  nofileReexecCommand,
  parsePortRange,
  parseProcLimits,
  readLimits,
  REEXEC_ENV,
  type OsLimits,
} from './limits.js';

const LIMITS_TEXT = [
  'Limit                     Soft Limit           Hard Limit           Units     ',
  'Max cpu time              unlimited            unlimited            seconds   ',
  'Max processes             63421                63421                processes ',
  'Max open files            1024                 524288               files     ',
  'Max locked memory         8388608              8388608              bytes     ',
].join('\n');

const limits = (over: Partial<OsLimits> = {}): OsLimits => ({
  openFilesSoft: 1024,
  openFilesHard: 4096,
  localPortRange: { lo: 32768, hi: 60999 },
  somaxconn: 4096,
  tcpMaxSynBacklog: 2048,
  fileMax: Number.MAX_SAFE_INTEGER, // /proc says 9223372036854775807 on 64-bit kernels
  ...over,
});

test('parseProcLimits: the Max open files row; unlimited is Infinity; absent or garbled is null', () => {
  assert.deepEqual(parseProcLimits(LIMITS_TEXT), { soft: 1024, hard: 524288 });
  assert.deepEqual(parseProcLimits('Max open files            unlimited            unlimited            files'), {
    soft: Infinity,
    hard: Infinity,
  });
  assert.deepEqual(parseProcLimits('Max processes             63421                63421'), { soft: null, hard: null });
  assert.deepEqual(parseProcLimits('Max open files            lots                 20000'), {
    soft: null,
    hard: 20000,
  });
});

test('parsePortRange: tab or spaces; invalid ranges are null', () => {
  assert.deepEqual(parsePortRange('32768\t60999\n'), { lo: 32768, hi: 60999 });
  assert.deepEqual(parsePortRange('1024 65535'), { lo: 1024, hi: 65535 });
  assert.deepEqual(parsePortRange('5000 5000'), { lo: 5000, hi: 5000 });
  assert.equal(parsePortRange('60999 32768'), null);
  assert.equal(parsePortRange('0 100'), null);
  assert.equal(parsePortRange('1024 70000'), null);
  assert.equal(parsePortRange('1024'), null);
  assert.equal(parsePortRange(''), null);
});

test('readLimits: a fake /proc; missing and garbled files give null, never a throw', () => {
  const root = mkdtempSync(join(tmpdir(), 'limits-'));
  try {
    const put = (rel: string, text: string): void => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      writeFileSync(join(root, rel), text);
    };
    assert.deepEqual(readLimits(root), {
      openFilesSoft: null,
      openFilesHard: null,
      localPortRange: null,
      somaxconn: null,
      tcpMaxSynBacklog: null,
      fileMax: null,
    });
    put('self/limits', LIMITS_TEXT);
    put('sys/net/ipv4/ip_local_port_range', '10000\t20000\n');
    put('sys/net/core/somaxconn', '4096\n');
    put('sys/net/ipv4/tcp_max_syn_backlog', 'not a number\n');
    put('sys/fs/file-max', '2466183\n');
    assert.deepEqual(readLimits(root), {
      openFilesSoft: 1024,
      openFilesHard: 524288,
      localPortRange: { lo: 10000, hi: 20000 },
      somaxconn: 4096,
      tcpMaxSynBacklog: null,
      fileMax: 2466183,
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('readLimits: the real /proc is plausible (soft <= hard, lo < hi, positive figures)', () => {
  const l = readLimits();
  assert.ok(l.openFilesSoft !== null && l.openFilesHard !== null, JSON.stringify(l));
  assert.ok(l.openFilesSoft >= 1 && l.openFilesSoft <= l.openFilesHard, JSON.stringify(l));
  assert.ok(l.localPortRange !== null && l.localPortRange.lo < l.localPortRange.hi, JSON.stringify(l));
  for (const k of ['somaxconn', 'tcpMaxSynBacklog', 'fileMax'] as const) assert.ok((l[k] ?? 0) > 0, `${k}: ${l[k]}`);
  assert.equal(readLimits('/proc').openFilesHard, l.openFilesHard);
});

test('maxInFlight: soft open files bind; raising the soft limit makes the hard one or the port range bind', () => {
  assert.deepEqual(maxInFlight(limits(), { targets: 1 }), {
    value: 768,
    boundBy: 'open files (soft)',
    detail: '768 = open files (soft) 1,024 - 256 reserved; local port range 32768-60999 allows 28,232 x 1 target',
    withSoftRaised: {
      value: 3840,
      boundBy: 'open files (hard)',
      detail: '3,840 = open files (hard) 4,096 - 256 reserved; local port range 32768-60999 allows 28,232 x 1 target',
    },
  });
  const big = maxInFlight(limits({ openFilesHard: 1_048_576 }), { targets: 1 });
  assert.deepEqual(big.withSoftRaised, {
    value: 28232,
    boundBy: 'local port range',
    detail:
      '28,232 = local port range 32768-60999 allows 28,232 x 1 target; open files (hard) 1,048,576 - 256 reserved',
  });
  const two = maxInFlight(limits({ openFilesHard: 1_048_576 }), { targets: 2, reserveFds: 0 });
  assert.equal(two.withSoftRaised.value, 56464);
  assert.equal(two.value, 1024);
  assert.equal(two.boundBy, 'open files (soft)');
});

test('maxInFlight: ties name open files; a reserve above the limit gives 0; unknown limits are assumed and said', () => {
  const tie = maxInFlight(limits({ openFilesSoft: 1100, localPortRange: { lo: 1001, hi: 1100 } }), {
    targets: 1,
    reserveFds: 1000,
  });
  assert.deepEqual([tie.value, tie.boundBy], [100, 'open files (soft)']);
  const none = maxInFlight(limits({ openFilesSoft: 100 }), { targets: 1 });
  assert.deepEqual([none.value, none.boundBy], [0, 'open files (soft)']);
  const unknown = maxInFlight(limits({ openFilesSoft: null, openFilesHard: null, localPortRange: null }), {
    targets: 1,
  });
  assert.equal(
    unknown.detail,
    '768 = open files (soft) 1,024 - 256 reserved; local port range 32768-60999 allows 28,232 x 1 target' +
      ' (open-files limits unknown, assumed 1,024 soft / 4,096 hard; local port range unknown, assumed 32768-60999)',
  );
  assert.equal(unknown.withSoftRaised.value, 3840);
  const noSoft = maxInFlight(limits({ openFilesSoft: null, openFilesHard: 512 }), { targets: 1, reserveFds: 0 });
  assert.deepEqual([noSoft.value, noSoft.withSoftRaised.value], [512, 512]);
  const noHard = maxInFlight(limits({ openFilesHard: null }), { targets: 1, reserveFds: 0 });
  assert.deepEqual([noHard.value, noHard.withSoftRaised.value], [1024, 1024]);
  assert.throws(() => maxInFlight(limits(), { targets: 0 }), /targets must be a positive integer, got 0/);
  assert.throws(
    () => maxInFlight(limits(), { targets: 1, reserveFds: -1 }),
    /reserveFds must be an integer >= 0, got -1/,
  );
});

test('checkCapacity: fits against the hard limit; otherwise one line naming the limit', () => {
  assert.equal(checkCapacity(limits(), { inFlight: 3840, targets: 1 }), null); // needs 4,096 = hard (soft is raised by run)
  assert.equal(
    checkCapacity(limits(), { inFlight: 10_000, targets: 1 }),
    '10,000 in flight need 10,256 open files but the hard limit is 4,096 (raise it with ulimit -Hn or in /etc/security/limits.conf)',
  );
  assert.equal(
    checkCapacity(limits(), { inFlight: 3841, targets: 1 }),
    '3,841 in flight need 4,097 open files but the hard limit is 4,096 (raise it with ulimit -Hn or in /etc/security/limits.conf)',
  );
  const wide = limits({ openFilesHard: 1_048_576 });
  assert.equal(checkCapacity(wide, { inFlight: 28_232, targets: 1 }), null);
  assert.equal(
    checkCapacity(wide, { inFlight: 30_000, targets: 1 }),
    '30,000 in flight over 1 target need 30,000 local ports per target but net.ipv4.ip_local_port_range 32768-60999 has 28,232' +
      ' (widen it with sysctl -w net.ipv4.ip_local_port_range="1024 65535" or add target addresses)',
  );
  assert.equal(checkCapacity(wide, { inFlight: 56_464, targets: 2 }), null);
  assert.equal(
    checkCapacity(wide, { inFlight: 56_465, targets: 2 }),
    '56,465 in flight over 2 targets need 28,233 local ports per target but net.ipv4.ip_local_port_range 32768-60999 has 28,232' +
      ' (widen it with sysctl -w net.ipv4.ip_local_port_range="1024 65535" or add target addresses)',
  );
  assert.equal(
    checkCapacity(limits({ openFilesHard: 1_048_576, fileMax: 50_000 }), { inFlight: 50_000, targets: 4 }),
    '50,000 in flight need 50,256 open files but the system-wide limit fs.file-max is 50,000 (raise it with sysctl -w fs.file-max=N)',
  );
  assert.equal(
    checkCapacity(limits({ openFilesHard: null, openFilesSoft: null }), { inFlight: 5000, targets: 1, reserveFds: 0 }),
    '5,000 in flight need 5,000 open files but the hard limit is 4,096 (raise it with ulimit -Hn or in /etc/security/limits.conf)' +
      ' (open-files limits unknown, assumed 1,024 soft / 4,096 hard)',
  );
  assert.throws(() => checkCapacity(limits(), { inFlight: -1, targets: 1 }), RangeError);
});

test('nofileReexecCommand: null when not needed or not possible; otherwise sh with no interpolation', () => {
  const l = limits({ openFilesSoft: 1024, openFilesHard: 20000 });
  assert.equal(nofileReexecCommand(l, 1024, '/usr/bin/node', ['x.js']), null); // soft suffices
  assert.equal(nofileReexecCommand(limits({ openFilesSoft: 4096, openFilesHard: 4096 }), 10_000, '/n', []), null); // hard == soft
  assert.equal(nofileReexecCommand(limits({ openFilesSoft: null }), 10_000, '/n', []), null);
  assert.equal(nofileReexecCommand(limits({ openFilesHard: null }), 10_000, '/n', []), null);
  assert.deepEqual(nofileReexecCommand(l, 1025, '/usr/bin/node', ['dist/cli/arena.js', 'loadtest', 'run', '$(id)']), {
    cmd: '/bin/sh',
    args: [
      '-c',
      'ulimit -n "$0" && exec "$@"',
      '20000',
      '/usr/bin/node',
      'dist/cli/arena.js',
      'loadtest',
      'run',
      '$(id)',
    ],
  });
  // above the hard limit: still raises to the hard one (checkCapacity reports the shortfall)
  assert.equal(nofileReexecCommand(l, 50_000, '/n', [])?.args[2], '20000');
  assert.equal(nofileReexecCommand(limits({ openFilesHard: Infinity }), 50_000, '/n', [])?.args[2], 'unlimited');
  assert.equal(REEXEC_ENV, 'ARENA_NOFILE_RAISED');
});

/**
 * A program that reports what it sees: its open-files limits (grep reads its own /proc/self/limits,
 * inherited from the shell), REEXEC_ENV and each argument in brackets. A shell, not node: node raises
 * its own soft limit at startup (next test), which would hide whether the re-exec did it.
 */
const REPORT =
  `grep "^Max open files" /proc/self/limits; printf 'env=%s\\n' "\${${REEXEC_ENV}-unset}"; ` +
  `for a in "$@"; do printf '[%s]\\n' "$a"; done`;

/** Run cmd args under a shell that first lowers the soft open-files limit to 1024; returns stdout lines. */
function runLowered(cmd: string, args: string[]): string[] {
  const r = spawnSync('/bin/sh', ['-c', 'ulimit -Sn 1024 && exec "$@"', 'sh', cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, [REEXEC_ENV]: '1' },
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
  return r.stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' ').trim());
}

const hardLimit = (): number => {
  const hard = readLimits().openFilesHard;
  assert.ok(hard !== null && Number.isFinite(hard), `hard limit ${hard}`);
  if (hard <= 1024)
    assert.fail(
      `the hard open-files limit is ${hard}: these tests need one above 1024 to lower the soft limit below it`,
    );
  return hard;
};

test('nofileReexecCommand: the command really raises the soft limit to the hard one, arguments verbatim', () => {
  const hard = hardLimit();
  const tricky = ['a b', '$(echo pwned)', '"; exit 7; "', "it's", '*', ''];
  const program = ['-c', REPORT, 'report', ...tricky];
  const expectArgs = ['[a b]', '[$(echo pwned)]', '["; exit 7; "]', "[it's]", '[*]', '[]'];
  // control: without the re-exec the program keeps the lowered soft limit
  assert.deepEqual(runLowered('/bin/sh', program), [`Max open files 1024 ${hard} files`, 'env=1', ...expectArgs]);

  const l: OsLimits = { ...readLimits(), openFilesSoft: 1024 }; // what the lowered process reads
  const c = nofileReexecCommand(l, 5000, '/bin/sh', program);
  assert.ok(c !== null);
  assert.deepEqual(runLowered(c.cmd, c.args), [`Max open files ${hard} ${hard} files`, 'env=1', ...expectArgs]);
});

test('node raises its own soft open-files limit to the hard one at startup (so readLimits in node sees soft == hard)', () => {
  const hard = hardLimit();
  const js = "console.log(/^Max open files.*/m.exec(require('fs').readFileSync('/proc/self/limits', 'utf8'))[0])";
  assert.deepEqual(runLowered(process.execPath, ['-e', js]), [`Max open files ${hard} ${hard} files`]);
  assert.equal(readLimits().openFilesSoft, hard);
});
