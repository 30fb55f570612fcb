// One VM: its details, graphs (./graphs.ts), conditions (the VM's and its
// VMI's), events and YAML, refreshed every few seconds, with its actions.
import { stringify } from 'yaml';
import { api } from './api.ts';
import { actionBar } from './actions.ts';
import { h, showError, table } from './dom.ts';
import { vmGraphs } from './graphs.ts';
import { type Condition, eventsPath, type ObjectMeta, type Vm, type Vmi, vmisPath, vmRows, vmsPath } from './model.ts';

const REFRESH_MS = 5000;

interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  involvedObject?: { kind?: string };
}

export function vmPage(root: HTMLElement, ns: string, name: string): () => void {
  const { bar, update } = actionBar(ns, name, () => void refresh());
  const details = h('dl', { id: 'vm-details' });
  const conditions = table(['Object', 'Type', 'Status', 'Reason', 'Message'], { id: 'vm-conditions' });
  const events = table(['Last seen', 'Object', 'Type', 'Reason', 'Message'], { id: 'vm-events' });
  const yaml = h('pre', { id: 'vm-yaml' });
  const graphs = vmGraphs(ns, name);
  root.append(
    h('h2', {}, h('a', { href: `#/ns/${ns}/vms` }, ns), ' / ', name),
    bar,
    h('h3', {}, 'Details'),
    details,
    h('h3', {}, 'Graphs'),
    graphs.section,
    h('h3', {}, 'Conditions'),
    conditions.table,
    h('h3', {}, 'Events'),
    events.table,
    h('h3', {}, 'YAML'),
    yaml,
  );
  const row = (cells: (string | undefined)[]) => h('tr', {}, ...cells.map((c) => h('td', {}, c ?? '')));
  const render = (vm: Vm, vmi: Vmi | undefined, items: KubeEvent[]) => {
    const [summary] = vmRows([vm], vmi ? [vmi] : []);
    update(summary);
    const facts: [string, string | undefined][] = [
      ['Status', summary.status],
      ['Run strategy', vm.spec?.runStrategy ?? (vm.spec?.running ? 'Always' : undefined)],
      ['Instance type', vm.spec?.instancetype?.name],
      ['Preference', vm.spec?.preference?.name],
      ['VMI phase', vmi?.status?.phase],
      ['Node', summary.node],
      ['IP addresses', vmi?.status?.interfaces?.flatMap((i) => i.ipAddresses ?? (i.ipAddress ? [i.ipAddress] : [])).join(', ')],
      ['Guest OS', vmi?.status?.guestOSInfo?.prettyName ?? vmi?.status?.guestOSInfo?.name],
      ['Created', vm.metadata.creationTimestamp],
    ];
    details.replaceChildren(...facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value || '-')]));
    const conditionRows = (kind: string, list: Condition[] | undefined) =>
      (list ?? []).map((c) => row([kind, c.type, c.status, c.reason, c.message]));
    conditions.body.replaceChildren(
      ...conditionRows('VirtualMachine', vm.status?.conditions),
      ...conditionRows('VirtualMachineInstance', vmi?.status?.conditions),
    );
    const when = (e: KubeEvent) => e.lastTimestamp ?? e.eventTime ?? '';
    events.body.replaceChildren(
      ...[...items]
        .sort((a, b) => (when(a) < when(b) ? 1 : -1))
        .map((e) =>
          row([when(e), e.involvedObject?.kind, e.type, e.reason, `${e.message ?? ''}${(e.count ?? 1) > 1 ? ` (x${e.count})` : ''}`]),
        ),
    );
    // As kubectl shows it: without the field managers' bookkeeping.
    const { managedFields: _, ...metadata } = vm.metadata as ObjectMeta & { managedFields?: unknown };
    yaml.textContent = stringify({ ...vm, metadata });
  };
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  async function refresh() {
    clearTimeout(timer);
    try {
      const path = (base: string) => `${base}/${encodeURIComponent(name)}`;
      const [vm, vmi, list] = await Promise.all([
        api<Vm>('GET', path(vmsPath(ns))),
        api<Vmi>('GET', path(vmisPath(ns))).catch(() => undefined),
        // Events are core objects: a user with the kubevirt.io roles alone may not read them.
        api<{ items: KubeEvent[] }>('GET', eventsPath(ns, name)).catch((error: Error) => ({
          items: [{ type: 'Warning', reason: 'NotShown', message: `events: ${error.message}` }],
        })),
      ]);
      if (!stopped) render(vm, vmi, list.items);
    } catch (error) {
      showError(`reading ${ns}/${name}: ${(error as Error).message}`);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    graphs.stop();
  };
}
