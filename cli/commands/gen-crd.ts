import type { Command } from 'commander';
import { arenaDeploymentCrdYaml } from '../../operator/api/v1alpha1/crd.js';
import { writeFilesAtomically } from '../io.js';
import { basename, dirname } from 'node:path';

/** `arena gen-crd [--out FILE]`: the CRD generated from the schema. */
export function registerGenCrd(program: Command): void {
  program
    .command('gen-crd')
    .description('print (or write) the ArenaDeployment CRD generated from the schema')
    .option('--out <file>', 'write to this file instead of stdout')
    .action((opts: { out?: string }) => {
      const text = arenaDeploymentCrdYaml();
      if (opts.out) writeFilesAtomically(dirname(opts.out), [{ name: basename(opts.out), content: text }]);
      else process.stdout.write(text);
    });
}
