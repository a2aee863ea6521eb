#!/usr/bin/env node
/**
 * The `arena` command line. Exit codes: 0 ok, 1 plan findings at or above
 * --fail-on, 2 bad input (file, YAML, schema, flag), 3 internal error.
 */
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerCalibrate } from './commands/calibrate.js';
import { registerDevCluster } from './commands/dev-cluster.js';
import { registerGenCrd } from './commands/gen-crd.js';
import { registerLoadtest } from './commands/loadtest.js';
import { registerOperator } from './commands/operator.js';
import { registerPlan } from './commands/plan.js';
import { registerQueue } from './commands/queue.js';
import { registerRender } from './commands/render.js';
import { registerSample } from './commands/sample.js';
import { registerStack } from './commands/stack.js';
import { registerValidate } from './commands/validate.js';
import { ArenaError, EXIT, exitCodeOf } from './errors.js';

export function buildProgram(): Command {
  const program = new Command('arena')
    .description('capacity planning for LLM-backed web APIs: plan, render, operate, load-test')
    .version('0.1.0')
    .exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `arena: ${s.slice(7)}` : s),
  });
  registerValidate(program);
  registerPlan(program);
  registerRender(program);
  registerQueue(program);
  registerGenCrd(program);
  registerStack(program);
  registerSample(program);
  registerLoadtest(program);
  registerBench(program);
  registerCalibrate(program);
  registerOperator(program);
  registerDevCluster(program);
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
    await buildProgram().parseAsync(argv);
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
