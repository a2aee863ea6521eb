/**
 * Kernel tuning on a stand-in /proc/sys (real files in a temporary folder):
 * only settings below what a large run wants are raised, a setting is never
 * lowered, and one that cannot be written is reported with the command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tune } from './tuning.js';

function procSys(values: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'arena-procsys-'));
  for (const [path, v] of Object.entries(values)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), `${v}\n`);
  }
  return root;
}

test('tune: reports what is low without --apply, raises only that with it, never lowers', (t) => {
  const root = procSys({
    'net/ipv4/ip_local_port_range': '32768\t60999',
    'net/ipv4/tcp_tw_reuse': '0',
    'net/core/somaxconn': '65535',
    'net/ipv4/tcp_max_syn_backlog': '128',
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dry = Object.fromEntries(tune(false, root).map((o) => [o.setting, o]));
  assert.equal(dry['net.ipv4.ip_local_port_range']!.status, 'low');
  assert.equal(dry['net.core.somaxconn']!.status, 'ok', 'a larger value is enough');
  assert.equal(readFileSync(join(root, 'net/ipv4/tcp_tw_reuse'), 'utf8').trim(), '0', 'nothing written without apply');
  const applied = Object.fromEntries(tune(true, root).map((o) => [o.setting, o]));
  assert.equal(applied['net.ipv4.ip_local_port_range']!.status, 'applied');
  assert.equal(readFileSync(join(root, 'net/ipv4/ip_local_port_range'), 'utf8').trim(), '15000\t64999');
  assert.equal(readFileSync(join(root, 'net/ipv4/tcp_tw_reuse'), 'utf8').trim(), '2');
  assert.equal(readFileSync(join(root, 'net/ipv4/tcp_max_syn_backlog'), 'utf8').trim(), '4096');
  assert.equal(readFileSync(join(root, 'net/core/somaxconn'), 'utf8').trim(), '65535', 'never lowered');
  assert.ok(
    tune(true, root).every((o) => o.status === 'ok'),
    'a second apply finds everything enough',
  );
});

test('tune: a setting that is missing or cannot be read is unknown, and the others are still applied', (t) => {
  const root = procSys({ 'net/ipv4/tcp_tw_reuse': '0', 'net/core/somaxconn': '128' });
  // a directory where a file should be: it cannot be read as a value (EISDIR)
  mkdirSync(join(root, 'net/ipv4/tcp_max_syn_backlog'), { recursive: true });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const o = Object.fromEntries(tune(true, root).map((x) => [x.setting, x]));
  assert.equal(o['net.ipv4.ip_local_port_range']!.status, 'unknown');
  assert.equal(o['net.ipv4.tcp_max_syn_backlog']!.status, 'unknown', 'a directory cannot be read as a value');
  assert.equal(o['net.core.somaxconn']!.status, 'applied');
});
