// Status conditions, kept as Kubernetes keeps them: one per type, the
// transition time moving only when the status does.

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: string;
  lastTransitionTime?: string;
}

/** `next` in place of the condition of its type; unchanged when status, reason and message are. */
export function setCondition<C extends Condition>(conditions: C[], next: C): C[] {
  const current = conditions.find((c) => c.type === next.type);
  if (current && current.status === next.status && current.reason === next.reason && current.message === next.message) return conditions;
  const transition = current && current.status === next.status ? current.lastTransitionTime : next.lastTransitionTime;
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime: transition }];
}

export const withoutCondition = <C extends Condition>(conditions: C[], type: string): C[] =>
  conditions.some((c) => c.type === type) ? conditions.filter((c) => c.type !== type) : conditions;

/** Conditions for telling whether anything changed: probe and transition times alone are no change. */
export const comparableConditions = (conditions: Condition[] | undefined) =>
  conditions?.map(({ lastProbeTime: _p, lastTransitionTime: _t, ...c }) => c).sort((a, b) => a.type.localeCompare(b.type));
