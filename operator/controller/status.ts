/**
 * The ArenaDeployment's status conditions as a pure function of what one
 * reconcile pass found (docs/operator.md, "Status"): no cache, no apiserver,
 * no clock except the `now` it is given.
 *
 * | outcome    | Planned                    | Progressing                           | Degraded                   | Ready               |
 * |------------|----------------------------|---------------------------------------|----------------------------|---------------------|
 * | invalid    | False InvalidSpec          | (left as it was)                      | True InvalidSpec           | (left as it was)    |
 * | infeasible | False <first error's code> | False PlanInfeasible                  | True PlanInfeasible        | the children        |
 * | feasible   | True PlanComputed          | ChildrenApplied / RollingOut / Stable | ChildNotOwned / AsExpected | children, no clash  |
 */
import type { Condition, Finding } from '../api/v1alpha1/schema.js';
import { setCondition, type ConditionType } from './conditions.js';

/** What the cached children say: API/PgBouncer Deployments available, Redis StatefulSet ready, rollouts done. */
export interface Readiness {
  ready: boolean;
  /** Every Deployment/StatefulSet has observed its generation and updated all its replicas. */
  rolledOut: boolean;
  /** Ready replicas of the API Deployment (status.replicas). */
  replicas: number;
  /** "all children are ready", or what is missing. */
  message: string;
}

/** The plain inputs of `computeConditions`: the generation and what this pass found. */
export type ConditionInputs = { generation: number } & (
  | {
      /** The stored spec fails validation (an older CRD); `errors` is "path: message; ...". */
      outcome: 'invalid';
      errors: string;
    }
  | {
      /** The plan has error findings (at least one): nothing was applied or pruned. */
      outcome: 'infeasible';
      errorFindings: readonly [Finding, ...Finding[]];
      readiness: Readiness;
    }
  | {
      /** The plan is feasible: children were applied and pruned as needed. */
      outcome: 'feasible';
      replicas: { min: number; max: number };
      /** Number of findings of the plan (none of them an error). */
      warnings: number;
      /** Children applied and pruned by this pass. */
      applied: number;
      pruned: number;
      /** Children whose name is taken by an object this ArenaDeployment does not control (`Kind/name`). */
      conflicts: readonly string[];
      readiness: Readiness;
    }
);

type Outcome<O extends ConditionInputs['outcome']> = Extract<ConditionInputs, { outcome: O }>;

/** A condition as decided, before lastTransitionTime is worked out. */
export type DecidedCondition = Omit<Condition, 'lastTransitionTime'> & { type: ConditionType };

/**
 * The conditions after this pass: `previous` with each decided condition set in
 * turn (lastTransitionTime = `now` only where the status changed; a new type is
 * appended). Conditions an outcome does not decide keep their previous value.
 */
export function computeConditions(
  input: ConditionInputs,
  previous: readonly Condition[] | undefined,
  now: string,
): Condition[] {
  let list = (previous ?? []) as Condition[];
  for (const c of decideConditions(input)) list = setCondition(list, c, now);
  return list;
}

/** The conditions this pass decides, in the order they are set. */
export function decideConditions(input: ConditionInputs): DecidedCondition[] {
  const observedGeneration = input.generation;
  const cond = (type: ConditionType, status: boolean, reason: string, message: string): DecidedCondition => ({
    type,
    status: status ? 'True' : 'False',
    reason,
    message,
    observedGeneration,
  });
  switch (input.outcome) {
    case 'invalid':
      return [cond('Planned', false, 'InvalidSpec', input.errors), cond('Degraded', true, 'InvalidSpec', input.errors)];
    case 'infeasible':
      return infeasibleConditions(input, cond);
    case 'feasible':
      return feasibleConditions(input, cond);
  }
}

type Cond = (type: ConditionType, status: boolean, reason: string, message: string) => DecidedCondition;

function infeasibleConditions(input: Outcome<'infeasible'>, cond: Cond): DecidedCondition[] {
  const [first, ...others] = input.errorFindings;
  const more = others.length > 0 ? ` (and ${others.length} more error finding(s); see status.findings)` : '';
  const kept = 'the last good children are kept; nothing new is applied until the plan is feasible';
  return [
    cond('Planned', false, first.code, `${first.message}${more}`),
    cond('Progressing', false, 'PlanInfeasible', kept),
    cond('Degraded', true, 'PlanInfeasible', 'the spec passes the schema but its capacity plan cannot hold the target'),
    readyCondition(input.readiness.ready, input.readiness.message, cond),
  ];
}

function feasibleConditions(input: Outcome<'feasible'>, cond: Cond): DecidedCondition[] {
  const { replicas, warnings, applied, pruned, conflicts, readiness } = input;
  const planned = cond(
    'Planned',
    true,
    'PlanComputed',
    `maxReplicas ${replicas.max}, minReplicas ${replicas.min}, ${warnings} warning(s)`,
  );

  let progressing: DecidedCondition;
  if (applied + pruned > 0)
    progressing = cond('Progressing', true, 'ChildrenApplied', `applied ${applied}, pruned ${pruned}`);
  else if (!readiness.rolledOut) progressing = cond('Progressing', true, 'RollingOut', readiness.message);
  else progressing = cond('Progressing', false, 'Stable', 'every child matches the plan');

  let degraded: DecidedCondition;
  if (conflicts.length > 0) {
    const message = `objects exist with the names of children but are not owned by this ArenaDeployment: ${conflicts.join(', ')}`;
    degraded = cond('Degraded', true, 'ChildNotOwned', message);
  } else {
    degraded = cond('Degraded', false, 'AsExpected', 'no errors');
  }

  // A conflicting object stands where one of our children should be: not Ready, whatever the others say.
  return [
    planned,
    progressing,
    degraded,
    readyCondition(readiness.ready && conflicts.length === 0, readiness.message, cond),
  ];
}

function readyCondition(ready: boolean, message: string, cond: Cond): DecidedCondition {
  return ready ? cond('Ready', true, 'AllChildrenReady', message) : cond('Ready', false, 'ChildrenNotReady', message);
}
