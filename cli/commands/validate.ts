import type { Command } from 'commander';
import { loadArenaDeployments } from '../io.js';

/** `arena validate -f FILE`: schema + CEL rules; prints one line per valid document. */
export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check an ArenaDeployment file against the schema and its CEL rules')
    .requiredOption('-f, --file <file>', 'ArenaDeployment YAML file (- for stdin)')
    .action((opts: { file: string }) => {
      const docs = loadArenaDeployments(opts.file);
      for (const d of docs)
        process.stdout.write(
          `${opts.file}: ${d.kind} ${d.metadata.namespace ?? 'default'}/${d.metadata.name} is valid\n`,
        );
    });
}
