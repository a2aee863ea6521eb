/**
 * `arena loadtest collect` refuses bad input before it talks to any apiserver:
 * one line naming the argument or flag, exit 2, nothing written. (The
 * collection itself is tested end to end in operator/controller/loadtest-e2e.test.ts.)
 */
import { test } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { assertRefused, runArena } from '../../testing/cli.js';

test('collect: a bad NAME, -o or --kubeconfig is one line naming it, exit 2, nothing written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arena-collect-'));
  try {
    const out = join(dir, 'out');
    assertRefused(
      runArena(['loadtest', 'collect', 'Bad_Name', '--out', out]),
      /NAME: "Bad_Name" is not a Kubernetes object name/,
    );
    assertRefused(
      runArena(['loadtest', 'collect', 'lt', '-o', 'xml', '--out', out]),
      /--output: expected text or json/,
    );
    assertRefused(
      runArena(['loadtest', 'collect', 'lt', '--kubeconfig', join(dir, 'missing.yaml'), '--out', out]),
      /--kubeconfig: cannot load/,
    );
    assert.equal(existsSync(out), false, 'nothing written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
