import type { Command } from 'commander';
import { Option } from 'commander';
import { stringify } from 'yaml';
import { plan } from '../../operator/planner/plan.js';
import type { CapacityPlan } from '../../operator/planner/types.js';
import { EXIT } from '../errors.js';
import { planTable } from '../format/plan-table.js';
import { loadArenaDeployments } from '../io.js';
import { oneOf } from '../options.js';

const FAIL_ON = ['error', 'warning', 'none'] as const;

/** Exit code for a set of plans and a --fail-on level. */
export function exitCodeFor(plans: CapacityPlan[], failOn: (typeof FAIL_ON)[number]): number {
  if (failOn === 'none') return EXIT.ok;
  const hit = plans.some((p) =>
    p.findings.some((f) => f.severity === 'error' || (failOn === 'warning' && f.severity === 'warning')),
  );
  return hit ? EXIT.findings : EXIT.ok;
}

/** The -o json / -o yaml value: one CapacityPlan, or a CapacityPlanList for a file with several documents. */
export function planOutput(plans: CapacityPlan[]): unknown {
  return plans.length === 1 ? plans[0] : { apiVersion: 'arena.dev/v1alpha1', kind: 'CapacityPlanList', items: plans };
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('compute the capacity plan: replicas, pool sizes, connection budgets, queue waits and findings')
    .requiredOption('-f, --file <file>', 'ArenaDeployment YAML file (- for stdin)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .option('--explain', 'show the formula, inputs and source behind each value')
    .addOption(
      new Option('--fail-on <severity>', 'exit 1 when a finding is at or above this severity')
        .argParser(oneOf(FAIL_ON))
        .default('error'),
    )
    .action(
      (opts: {
        file: string;
        output: 'table' | 'json' | 'yaml';
        explain?: boolean;
        failOn: (typeof FAIL_ON)[number];
      }) => {
        const plans = loadArenaDeployments(opts.file).map((ad) => plan(ad, { explain: opts.explain === true }));
        if (opts.output === 'json') process.stdout.write(`${JSON.stringify(planOutput(plans), null, 2)}\n`);
        else if (opts.output === 'yaml') process.stdout.write(stringify(planOutput(plans), { lineWidth: 0 }));
        else process.stdout.write(`${plans.map(planTable).join('\n\n')}\n`);
        process.exitCode = exitCodeFor(plans, opts.failOn);
      },
    );
}
