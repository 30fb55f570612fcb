// The lifecycle buttons shared by the VM list and the VM page: start, stop,
// restart, pause/unpause through upstream's subresource API, delete, and the
// console and VNC pages. The API decides who may: a refusal shows its message.
import { api } from './api.ts';
import { h, showError, showNotice } from './dom.ts';
import { type VmAction, type VmiAction, type VmRow, vmActionPath, vmiSubresourcePath, vmsPath } from './model.ts';

async function run(label: string, call: () => Promise<unknown>, refresh: () => void) {
  showError(undefined);
  try {
    await call();
    showNotice(label);
  } catch (error) {
    showError(`${label} failed: ${(error as Error).message}`);
  }
  refresh();
}

/** The action buttons of one VM, enabled by what its row says; `update` re-reads them after a refresh. */
export function actionBar(ns: string, name: string, refresh: () => void): { bar: HTMLElement; update: (row: VmRow) => void } {
  const vmAction = (action: VmAction) => () => run(`${action} ${name}`, () => api('PUT', vmActionPath(ns, name, action), {}), refresh);
  const vmiAction = (action: VmiAction) => () =>
    run(`${action} ${name}`, () => api('PUT', vmiSubresourcePath(ns, name, action), {}), refresh);
  const remove = () => {
    if (!confirm(`Delete the VM ${ns}/${name}?`)) return;
    void run(`delete ${name}`, () => api('DELETE', `${vmsPath(ns)}/${encodeURIComponent(name)}`), refresh);
  };
  const button = (action: string, onclick: () => void) => h('button', { type: 'button', 'data-action': action, onclick }, action);
  const buttons = {
    start: button('start', vmAction('start')),
    stop: button('stop', vmAction('stop')),
    restart: button('restart', vmAction('restart')),
    pause: button('pause', vmiAction('pause')),
    unpause: button('unpause', vmiAction('unpause')),
    delete: button('delete', remove),
  };
  const link = (what: string) => h('a', { href: `#/ns/${ns}/vm/${name}/${what}`, 'data-action': what, class: 'button' }, what);
  const bar = h('span', { class: 'actions' }, ...Object.values(buttons), link('console'), link('vnc'));
  const update = (row: VmRow) => {
    buttons.stop.disabled = !row.started;
    buttons.restart.disabled = !row.started;
    buttons.pause.hidden = row.paused;
    buttons.pause.disabled = !row.started;
    buttons.unpause.hidden = !row.paused;
  };
  return { bar, update };
}
