// The VM list of a namespace: status, address, node, CPU and memory use of
// each VM, refreshed every few seconds, with its actions. Rows are updated in place, so a button
// is never replaced under the pointer.
import { api, namespace, setNamespace } from './api.ts';
import { actionBar } from './actions.ts';
import { formatBytes, formatCores } from './plot.ts';
import { h, showError, table } from './dom.ts';
import { type Vm, type Vmi, type VmRow, vmisPath, vmRows, vmsPath } from './model.ts';
import { type NamespaceUsage, namespaceUsagePath } from '../vmi-metrics.ts';

const REFRESH_MS = 3000;

export function vmListPage(root: HTMLElement, ns: string): () => void {
  setNamespace(ns);
  const nsInput = h('input', { id: 'namespace', value: ns, 'aria-label': 'namespace' });
  const go = () => (location.hash = `#/ns/${encodeURIComponent(nsInput.value.trim() || namespace())}/vms`);
  nsInput.addEventListener('keydown', (e) => (e as KeyboardEvent).key === 'Enter' && go());
  const { table: list, body } = table(['Name', 'Status', 'IP', 'Node', 'CPU', 'Memory', 'Actions'], {
    id: 'vm-list',
  });
  const empty = h('p', { id: 'vm-list-empty', hidden: true }, 'No virtual machines in this namespace.');
  const usageNote = h('p', { id: 'vm-usage-source', class: 'hint' });
  root.append(
    h(
      'div',
      { class: 'toolbar' },
      h('label', {}, 'Namespace ', nsInput),
      h('button', { type: 'button', onclick: go }, 'show'),
      h('a', { href: `#/ns/${ns}/create`, class: 'button', id: 'create-vm' }, 'Create VM'),
    ),
    list,
    empty,
    usageNote,
  );
  const rows = new Map<string, { tr: HTMLTableRowElement; cells: HTMLTableCellElement[]; update: (row: VmRow) => void }>();
  const render = (data: VmRow[], usage: NamespaceUsage['usage']) => {
    for (const row of data) {
      let entry = rows.get(row.name);
      if (!entry) {
        const { bar, update } = actionBar(ns, row.name, refresh);
        const cells = ['status', 'ip', 'node', 'cpu', 'memory'].map((cell) => h('td', { class: cell }));
        const tr = h(
          'tr',
          { 'data-vm': row.name },
          h('td', {}, h('a', { href: `#/ns/${ns}/vm/${row.name}` }, row.name)),
          ...cells,
          h('td', {}, bar),
        );
        entry = { tr, cells, update };
        rows.set(row.name, entry);
      }
      const { cpu, memory } = (row.started && usage[row.name]) || {};
      const texts = [
        row.status,
        row.ip,
        row.node,
        cpu === undefined ? '' : formatCores(cpu),
        memory === undefined ? '' : formatBytes(memory),
      ];
      for (const [i, text] of texts.entries()) entry.cells[i].textContent = text;
      entry.update(row);
      body.append(entry.tr);
    }
    for (const [name, entry] of rows) {
      if (!data.some((row) => row.name === name)) {
        entry.tr.remove();
        rows.delete(name);
      }
    }
    empty.hidden = data.length > 0;
  };
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  async function refresh() {
    clearTimeout(timer);
    try {
      const [vms, vmis, usage] = await Promise.all([
        api<{ items: Vm[] }>('GET', vmsPath(ns)),
        api<{ items: Vmi[] }>('GET', vmisPath(ns)).catch(() => ({ items: [] as Vmi[] })),
        api<NamespaceUsage>('GET', namespaceUsagePath(ns)).catch((error: Error) => error),
      ]);
      if (stopped) return;
      render(vmRows(vms.items, vmis.items), usage instanceof Error ? {} : usage.usage);
      usageNote.textContent =
        usage instanceof Error
          ? `CPU and memory use not shown: ${usage.message}`
          : `CPU and memory use from ${usage.source === 'prometheus' ? 'Prometheus' : "the console's own samples of virt-handler's metrics"}.`;
    } catch (error) {
      showError(`listing VMs in ${ns}: ${(error as Error).message}`);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }
  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
