/**
 * The layers point one way (README, "Layout"): nothing outside cli/ imports
 * from cli/ (only the CLI knows exit codes), and lib/ imports nothing of the
 * project. A test, so a new import that breaks the rule fails `make test`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './util.js';

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== 'testenv') yield* sources(p);
    } else if (p.endsWith('.ts')) yield p;
  }
}

/** The relative module specifiers a file imports (static and dynamic). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

test('no module outside cli/ imports from cli/', () => {
  const offenders: string[] = [];
  for (const top of ['lib', 'operator', 'loadtest', 'testing']) {
    let files: string[];
    try {
      files = [...sources(join(REPO_ROOT, top))];
    } catch {
      continue;
    }
    for (const f of files) {
      for (const spec of imports(f)) {
        const target = relative(REPO_ROOT, join(f, '..', spec));
        if (target.startsWith('cli/') || target === 'cli') offenders.push(`${relative(REPO_ROOT, f)} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('lib/ imports nothing of the project', () => {
  const offenders = [...sources(join(REPO_ROOT, 'lib'))].flatMap((f) =>
    imports(f)
      .filter((s) => s.startsWith('../'))
      .map((s) => `${relative(REPO_ROOT, f)} imports ${s}`),
  );
  assert.deepEqual(offenders, []);
});
