/**
 * The operator process must not load @kubernetes/client-node (its import alone
 * costs ~70 MiB of RSS; docs/operator.md, "Cache and memory"). This walks the
 * compiled JavaScript from dist/cli/commands/operator.js along every relative
 * import (static `import`/`export ... from` and dynamic `import('./x.js')`,
 * read with TypeScript's `preProcessFile`, so comments and strings do not
 * count) and fails when a reachable module imports the package, except the one
 * documented fallback: the dynamic import in operator/kube/config.js for users
 * with `exec` or `auth-provider`. `import type` is erased by tsc, so it is not
 * seen (and costs nothing at runtime).
 *
 * The first test runs the same walk on a small module graph written to a
 * temporary folder, to show it catches a static import, an `export ... from`,
 * a dynamic import two modules away, and ignores the package in comments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repoPath } from '../../testing/paths.js';

const PACKAGE = '@kubernetes/client-node';
const DIST = repoPath('dist');

/** One import of the package: the module, its chain from the root, and whether it is a dynamic import(). */
interface Found {
  module: string;
  /** The package imported. */
  pkg: string;
  chain: string[];
  dynamic: boolean;
}

/**
 * Every module reachable from `root` by relative imports, and every import of PACKAGE (or a subpath) in them.
 * @throws Error when a relative import names a file that does not exist.
 */
function walk(root: string, packages: string[] = [PACKAGE]): { modules: string[]; found: Found[] } {
  const parent = new Map<string, string | undefined>([[root, undefined]]);
  const queue = [root];
  const found: Found[] = [];
  const chain = (m: string) => {
    const out: string[] = [];
    for (let x: string | undefined = m; x; x = parent.get(x)) out.unshift(relative(dirname(root), x));
    return out;
  };
  while (queue.length) {
    const module = queue.shift()!;
    const src = readFileSync(module, 'utf8');
    for (const { fileName, pos } of ts.preProcessFile(src, true, true).importedFiles) {
      if (fileName.startsWith('.')) {
        const target = resolve(dirname(module), fileName);
        if (!parent.has(target)) {
          parent.set(target, module);
          queue.push(target);
        }
      } else {
        const pkg = packages.find((p) => fileName === p || fileName.startsWith(`${p}/`));
        if (pkg)
          found.push({ module, pkg, chain: chain(module), dynamic: /\bimport\s*\(\s*$/.test(src.slice(0, pos)) });
      }
    }
  }
  return { modules: [...parent.keys()], found };
}

/** The imports of the package the operator process may not have: all but the dynamic one in kube/config.js. */
function forbidden(found: Found[], allowed: string): Found[] {
  return found.filter((f) => !(f.module === allowed && f.dynamic));
}

test('the walk catches static, re-exported and dynamic imports of the package, not comments', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arena-import-graph-'));
  try {
    const files: Record<string, string> = {
      'main.js': `// import * as k8s from '${PACKAGE}';\nimport { a } from './a.js';\nconst b = await import('./b.js');`,
      'a.js': `/* '${PACKAGE}' */\nexport const a = 1;\nexport * from './c.js';`,
      'b.js': `export const load = () => import('${PACKAGE}');`,
      'c.js': `import * as k8s from '${PACKAGE}';\nexport { KubeConfig } from '${PACKAGE}/dist/config.js';`,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const { modules, found } = walk(join(dir, 'main.js'));
    assert.equal(modules.length, 4);
    const seen = found.map((f) => `${f.chain.join(' > ')}${f.dynamic ? ' (dynamic)' : ''}`).sort();
    assert.deepEqual(seen, ['main.js > a.js > c.js', 'main.js > a.js > c.js', 'main.js > b.js (dynamic)']);
    // the allowance is for the dynamic import of one module only
    assert.equal(forbidden(found, join(dir, 'b.js')).length, 2);
    assert.equal(forbidden(found, join(dir, 'c.js')).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nothing the operator process loads imports @kubernetes/client-node, but the exec/auth-provider fallback', () => {
  const root = join(DIST, 'cli/commands/operator.js');
  const allowed = join(DIST, 'operator/kube/config.js');
  const { modules, found } = walk(root);
  // the walk reaches the operator through the CLI's dynamic import of the manager
  for (const m of ['operator/controller/manager.js', 'operator/controller/kube.js', 'operator/kube/informer.js'])
    assert.ok(modules.includes(join(DIST, m)), `reaches ${m}`);
  const bad = forbidden(found, allowed);
  assert.deepEqual(
    bad.map((f) => f.chain.join(' > ')),
    [],
    `modules of the operator process import ${PACKAGE} at runtime`,
  );
  assert.deepEqual(
    found.map((f) => [relative(DIST, f.module), f.dynamic]),
    [['operator/kube/config.js', true]],
    'the one import: the exec/auth-provider fallback, dynamic',
  );
});

test('nor the load engine and sampler clients (undici, pg, ioredis): the ArenaLoadTest merge needs only the result code', () => {
  const { found } = walk(join(DIST, 'cli/commands/operator.js'), ['undici', 'pg', 'ioredis']);
  assert.deepEqual(
    found.map((f) => `${f.pkg}: ${f.chain.join(' > ')}`),
    [],
    'modules of the operator process import a client it does not use',
  );
});
