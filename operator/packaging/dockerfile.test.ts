/**
 * The Dockerfiles (operator.Dockerfile, api.Dockerfile) and .dockerignore.
 * There is no container engine on the project's machines and Debian does not
 * package hadolint, so they are parsed (dockerfile-ast) and linted
 * (dockerfile-utils, the linter of the VS Code Docker language server) here,
 * checked against the rules below, and their build is simulated: the build
 * context that .dockerignore leaves is compiled with tsc exactly as the build
 * stage does, and the compiled runtime code may import only production
 * dependencies (the runtime stage has `npm ci --omit=dev`).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { DockerfileParser, type Dockerfile, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { parse } from 'yaml';
import { REPO_ROOT, repoPath } from '../../testing/paths.js';

const IMAGES = [
  { file: 'operator.Dockerfile', entrypoint: ['arena'], ports: [8080, 8081] },
  { file: 'api.Dockerfile', entrypoint: ['node', 'dist/loadtest/api/main.js'], ports: [8000] },
] as const;

const read = (f: string) => readFileSync(repoPath(f), 'utf8');
const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const json = (i: Instruction) => JSON.parse(i.getArgumentsContent() ?? 'null') as unknown;

interface Stage {
  name: string | null;
  from: string;
  instructions: Instruction[];
}

/** Instructions grouped by stage (FROM ... up to the next FROM), with ARG defaults expanded in FROM. */
function stages(df: Dockerfile): Stage[] {
  const argDefaults = new Map(
    df.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue() ?? '']),
  );
  const out: Stage[] = [];
  for (const i of df.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const image = args(i)[0]!.replace(/\$\{?(\w+)\}?/g, (_, v: string) => argDefaults.get(v) ?? `$${v}`);
      const as = args(i).findIndex((a) => a.toUpperCase() === 'AS');
      out.push({ name: as >= 0 ? args(i)[as + 1]! : null, from: image, instructions: [] });
    } else if (out.length) out[out.length - 1]!.instructions.push(i);
  }
  return out;
}

const of = (s: Stage, kw: string) => s.instructions.filter((i) => i.getKeyword() === kw);
const runs = (s: Stage) => of(s, 'RUN').map((i) => i.getArgumentsContent() ?? '');

for (const img of IMAGES) {
  const text = read(img.file);
  const df = DockerfileParser.parse(text);
  const all = stages(df);
  const final = all[all.length - 1]!;

  test(`${img.file}: parses and lints clean (dockerfile-utils)`, () => {
    assert.deepEqual(
      validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
      [],
    );
    // the linter can fail
    assert.ok(validate(`${text}\nCOPYY a b\n`).length > 0);
  });

  test(`${img.file}: multi-stage, every base image pinned to a tag (never latest), final stage "runtime"`, () => {
    assert.ok(all.length >= 2, 'multi-stage');
    assert.equal(final.name, 'runtime');
    const names = new Set<string>();
    for (const s of all) {
      if (!names.has(s.from)) {
        const m = /^([^@]+?)(?::([\w][\w.-]*))?(?:@sha256:[a-f0-9]{64})?$/.exec(s.from);
        assert.ok(m, `${s.name}: cannot read the image ${s.from}`);
        assert.ok(m[2] || s.from.includes('@sha256:'), `${s.name}: ${s.from} has no tag or digest`);
        assert.notEqual(m[2], 'latest', `${s.name}: ${s.from} uses latest`);
        assert.match(
          s.from,
          /^node:\d+(\.\d+)*-(bookworm|bullseye)-slim|^gcr\.io\/distroless\/nodejs/,
          `${s.name}: a small Node.js base (${s.from})`,
        );
      }
      if (s.name) names.add(s.name);
    }
    assert.equal(df.getInstructions().filter((i) => i.getKeyword() === 'ADD').length, 0, 'COPY, not ADD');
  });

  test(`${img.file}: npm ci + tsc in the build stage; the runtime gets node_modules from \`npm ci --omit=dev\` and only dist/ from the build`, () => {
    const build = all.find((s) => runs(s).some((r) => /\bnpx tsc\b/.test(r)));
    assert.ok(build, 'a stage runs npx tsc');
    assert.ok(
      runs(build).some((r) => /^npm ci\b/.test(r) && !r.includes('--omit=dev')),
      'the build stage installs all dependencies with npm ci',
    );
    const prod = all.find((s) => runs(s).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)));
    assert.ok(prod, 'a stage runs npm ci --omit=dev');
    assert.ok(!all.some((s) => runs(s).some((r) => /\bnpm (install|i)\b/.test(r))), 'npm ci, never npm install');
    const copies = of(final, 'COPY').map((c) => ({
      from: (c as any).getFromFlag()?.getValue() as string | undefined,
      args: args(c).filter((a) => !a.startsWith('--')),
    }));
    const nm = copies.find((c) => c.args.some((a) => a.includes('node_modules')));
    assert.equal(nm?.from, prod.name, 'node_modules come from the --omit=dev stage');
    for (const c of copies.filter((c) => c.from === build.name))
      assert.deepEqual(c.args.slice(0, -1), ['/src/dist'], `only dist/ is copied from the build stage: ${c.args}`);
  });

  test(`${img.file}: runs as a numeric non-root user, with an exec-form ENTRYPOINT and a HEALTHCHECK`, () => {
    const users = of(final, 'USER');
    assert.equal(users.length, 1);
    const [uid, gid] = args(users[0]!)[0]!.split(':');
    assert.match(uid!, /^\d+$/, 'numeric, so Kubernetes can check runAsNonRoot');
    assert.notEqual(Number(uid), 0);
    assert.notEqual(Number(gid ?? 1), 0);
    const lastRun = Math.max(...of(final, 'RUN').map((r) => r.getRange().start.line), -1);
    assert.ok(users[0]!.getRange().start.line > lastRun, 'USER comes after the last RUN');
    const ep = of(final, 'ENTRYPOINT');
    assert.equal(ep.length, 1);
    assert.deepEqual(json(ep[0]!), img.entrypoint, 'exec form, so SIGTERM reaches node');
    const hc = of(final, 'HEALTHCHECK');
    assert.equal(hc.length, 1);
    assert.ok(args(hc[0]!).includes('CMD'));
    const exposed = of(final, 'EXPOSE').flatMap(args).map(Number);
    assert.deepEqual(exposed, [...img.ports]);
  });
}

test('operator.Dockerfile matches the chart: `arena` on PATH points at the compiled CLI, same uid, same ports', () => {
  const all = stages(DockerfileParser.parse(read('operator.Dockerfile')));
  const final = all[all.length - 1]!;
  const workdir = args(of(final, 'WORKDIR')[0]!)[0];
  assert.ok(
    runs(final).some((r) => r === `ln -s ${workdir}/dist/cli/arena.js /usr/local/bin/arena`),
    runs(final).join('\n'),
  );
  assert.ok(
    runs(all.find((s) => s.name === 'build')!).some((r) => r.includes('chmod +x dist/cli/arena.js')),
    'the CLI is executable',
  );
  assert.match(read('cli/arena.ts'), /^#!\/usr\/bin\/env node\n/, 'the CLI has a node shebang');
  const values = parse(read('charts/arena-operator/values.yaml'));
  const dep = readFileSync(repoPath('charts/arena-operator/templates/deployment.yaml'), 'utf8');
  assert.match(dep, /command: \[arena\]/);
  const uid = args(of(final, 'USER')[0]!)[0]!.split(':')[0];
  assert.equal(values.podSecurityContext.runAsUser, Number(uid));
  assert.deepEqual(of(final, 'EXPOSE').flatMap(args).map(Number), [values.metrics.port, values.health.port]);
});

test('api.Dockerfile runs the reference API entry point', () => {
  assert.ok(existsSync(repoPath('loadtest/api/main.ts')), 'loadtest/api/main.ts');
  const final = stages(DockerfileParser.parse(read('api.Dockerfile'))).at(-1)!;
  assert.equal(args(of(final, 'WORKDIR')[0]!)[0], '/app');
});

// ------------------------------------------------------------------ the build, simulated

/** .dockerignore patterns as regular expressions (Go filepath.Match plus `**`); a match on a directory excludes its contents. */
function dockerignore(): RegExp[] {
  return read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      assert.ok(!p.startsWith('!'), 'exceptions are not simulated');
      const re = p
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '(?:.*)'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return new RegExp(`^${re}(?:/.*)?$`);
    });
}

function contextFiles(): string[] {
  const ignore = dockerignore();
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const rel = relative(REPO_ROOT, join(dir, e.name));
      if (ignore.some((re) => re.test(rel))) continue;
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile()) out.push(rel);
    }
  };
  walk(REPO_ROOT);
  return out;
}

let work = '';
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('.dockerignore keeps dependencies, build output, tools and tests out of the build context', () => {
  const files = contextFiles();
  for (const f of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'cli/arena.ts',
    'operator/controller/manager.ts',
    'loadtest/api/main.ts',
  ])
    assert.ok(files.includes(f), `${f} is in the context`);
  for (const prefix of [
    'node_modules/',
    'dist/',
    '.tools/',
    '.git/',
    'charts/',
    'operator/testenv/',
    'operator/packaging/',
    'operator/testing/',
  ])
    assert.ok(!files.some((f) => f.startsWith(prefix)), `${prefix} is not in the context`);
  assert.ok(!files.some((f) => f.endsWith('.test.ts')), 'no tests in the context');
});

test('the build stage compiles from the context .dockerignore leaves, and the runtime code imports only production dependencies', () => {
  // what the build stage COPYs, from the filtered context
  const build = stages(DockerfileParser.parse(read('operator.Dockerfile'))).find((s) => s.name === 'build')!;
  const sources = of(build, 'COPY').flatMap((c) => args(c).slice(0, -1));
  const files = contextFiles().filter((f) => sources.some((s) => (s.endsWith('/') ? f.startsWith(s) : f === s)));
  work = mkdtempSync(join(tmpdir(), 'arena-docker-build-'));
  for (const f of files) {
    mkdirSync(dirname(join(work, f)), { recursive: true });
    cpSync(repoPath(f), join(work, f));
  }
  symlinkSync(repoPath('node_modules'), join(work, 'node_modules'), 'dir'); // stands in for `npm ci`
  const tsc = spawnSync(process.execPath, [repoPath('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
    cwd: work,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(tsc.status, 0, `tsc in the build context failed:\n${tsc.stdout}${tsc.stderr}`);
  for (const entry of ['dist/cli/arena.js', 'dist/loadtest/api/main.js'])
    assert.ok(existsSync(join(work, entry)), `${entry} is built`);

  const pkg = JSON.parse(read('package.json'));
  const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
  const bad: string[] = [];
  const scan = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) scan(p);
      else if (p.endsWith('.js')) {
        const src = readFileSync(p, 'utf8');
        for (const m of src.matchAll(
          /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm,
        )) {
          const spec = (m[1] ?? m[2] ?? m[3])!;
          if (spec.startsWith('.') || spec.startsWith('node:')) continue;
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (!allowed.has(name)) bad.push(`${relative(work, p)} imports ${spec}`);
        }
      }
    }
  };
  scan(join(work, 'dist'));
  assert.deepEqual(bad, [], 'runtime code imports packages that `npm ci --omit=dev` does not install');
});
