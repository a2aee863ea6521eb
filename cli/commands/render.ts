import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { plan } from '../../operator/planner/plan.js';
import { render, type KubeObject } from '../../operator/render/index.js';
import { loadArenaDeployments, writeFilesAtomically } from '../io.js';

/** Multi-document YAML of the objects, in apply order. */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

export function registerRender(program: Command): void {
  program
    .command('render')
    .description('print the Kubernetes objects the operator applies for an ArenaDeployment')
    .requiredOption('-f, --file <file>', 'ArenaDeployment YAML file (- for stdin)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--out-dir <dir>', 'write one file per object into this directory instead of stdout')
    .action((opts: { file: string; output: 'yaml' | 'json'; outDir?: string }) => {
      const objects = loadArenaDeployments(opts.file).flatMap((ad) => render(ad, plan(ad)));
      if (opts.outDir) {
        const ext = opts.output === 'json' ? 'json' : 'yaml';
        const files = objects.map((o, i) => ({
          name: `${String(i + 1).padStart(2, '0')}-${o.kind.toLowerCase()}-${o.metadata.name}.${ext}`,
          content: ext === 'json' ? `${JSON.stringify(o, null, 2)}\n` : stringify(o, { lineWidth: 0 }),
        }));
        writeFilesAtomically(opts.outDir, files);
        process.stdout.write(`wrote ${files.length} objects to ${opts.outDir}\n`);
        return;
      }
      if (opts.output === 'json')
        process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`);
      else process.stdout.write(toYaml(objects));
    });
}
