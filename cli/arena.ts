#!/usr/bin/env node
/**
 * The `arena` command line. Exit codes: 0 ok, 1 plan findings at or above
 * --fail-on, 2 bad input (file, YAML, schema, flag), 3 internal error.
 */
import { Command, CommanderError } from 'commander';
import { ArenaError, EXIT, exitCodeOf } from './errors.js';

type Register = (program: Command) => void;

/**
 * The top-level commands in help order, each loaded only when needed: `arena operator run` must not
 * carry the load engine, the reports and the stack in its memory (the operator's RSS is a sizing
 * figure, docs/operator.md), nor `arena validate` the Kubernetes client.
 */
const COMMANDS: [name: string, load: () => Promise<Register>][] = [
  ['validate', async () => (await import('./commands/validate.js')).registerValidate],
  ['plan', async () => (await import('./commands/plan.js')).registerPlan],
  ['render', async () => (await import('./commands/render.js')).registerRender],
  ['queue', async () => (await import('./commands/queue.js')).registerQueue],
  ['gen-crd', async () => (await import('./commands/gen-crd.js')).registerGenCrd],
  ['stack', async () => (await import('./commands/stack.js')).registerStack],
  ['sample', async () => (await import('./commands/sample.js')).registerSample],
  ['loadtest', async () => (await import('./commands/loadtest.js')).registerLoadtest],
  ['bench', async () => (await import('./commands/bench.js')).registerBench],
  ['calibrate', async () => (await import('./commands/calibrate.js')).registerCalibrate],
  ['operator', async () => (await import('./commands/operator.js')).registerOperator],
  ['dev-cluster', async () => (await import('./commands/dev-cluster.js')).registerDevCluster],
];

/**
 * The program with the command `argv` names registered, or every command when it names none of them
 * (help, --version, a mistake: commander then lists them all).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('arena')
    .description('capacity planning for LLM-backed web APIs: plan, render, operate, load-test')
    .version('0.1.0')
    .exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `arena: ${s.slice(7)}` : s),
  });
  const named = COMMANDS.find(([name]) => name === argv[2]);
  for (const [, load] of named ? [named] : COMMANDS) (await load())(program);
  prefixErrors(program.commands, 'arena');
  return program;
}

/** Every (sub)command exits through main() and prints parse errors as one line: `arena <command path>: <error>`. */
function prefixErrors(commands: readonly Command[], parent: string): void {
  for (const c of commands) {
    const path = `${parent} ${c.name()}`;
    c.exitOverride().configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `${path}: ${s.slice(7)}` : s),
    });
    prefixErrors(c.commands, path);
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; every parse error is bad input
      return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (e instanceof ArenaError && exitCodeOf(e) !== EXIT.internal) {
      for (const line of e.message.split('\n')) process.stderr.write(`arena: ${line}\n`);
      return exitCodeOf(e);
    }
    process.stderr.write(`arena: internal error: ${(e as Error).message} (set ARENA_DEBUG=1 for details)\n`);
    if (process.env['ARENA_DEBUG']) process.stderr.write(`${(e as Error).stack}\n`);
    return EXIT.internal;
  }
}

void main(process.argv).then((code) => {
  process.exitCode = code;
});
