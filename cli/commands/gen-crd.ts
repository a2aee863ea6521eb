import { Option, type Command } from 'commander';
import { arenaDeploymentCrdYaml, arenaLoadTestCrdYaml } from '../../operator/api/v1alpha1/crd.js';
import { writeFilesAtomically } from '../io.js';
import { basename, dirname } from 'node:path';

/** The CRD text of each kind `arena gen-crd --kind` knows. */
const CRDS: Record<string, () => string> = {
  ArenaDeployment: arenaDeploymentCrdYaml,
  ArenaLoadTest: arenaLoadTestCrdYaml,
};

/** `arena gen-crd [--kind KIND] [--out FILE]`: a CRD generated from its schema. */
export function registerGenCrd(program: Command): void {
  program
    .command('gen-crd')
    .description('print (or write) a CRD generated from its schema (ArenaDeployment by default)')
    .addOption(
      new Option('--kind <kind>', 'the resource whose CRD to generate')
        .choices(Object.keys(CRDS))
        .default('ArenaDeployment'),
    )
    .option('--out <file>', 'write to this file instead of stdout')
    .action((opts: { kind: string; out?: string }) => {
      const text = CRDS[opts.kind]!();
      if (opts.out) writeFilesAtomically(dirname(opts.out), [{ name: basename(opts.out), content: text }]);
      else process.stdout.write(text);
    });
}
