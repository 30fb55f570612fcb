// The web console in a real browser (Debian's Chromium, headless, driven by
// puppeteer-core): an editor logs in with a service account token, creates a
// VM from the catalogue (YAML reviewed first), starts it, reads its page,
// logs in on its serial console (typed and pasted input), sees its VNC display
// (in two viewers at once), stops and deletes it, then makes one whose disk is
// a DataVolume imported over HTTP; a viewer sees the list but
// the API's 403 on start and console. The list shows the running VM's CPU and
// memory use and its page graphs from the local Prometheus; a user of another
// namespace gets the API's 403 for its metrics; and a second console server,
// run as virt-operator runs it but without Prometheus, graphs the VM from the
// history it keeps of virt-handler's metrics, behind the same access check.
// Every page is written as a screenshot to test-results/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { apply, deleteNamespace, eventually, kubectl, startImageServer } from './kube.ts';

const NS = 'kvts-console-web';
/** Where the outsider may view VMs: not NS. */
const OTHER_NS = 'kvts-console-web-other';
const VM = 'web-vm';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'screenshots');
const INSTALL_NS = 'kubevirt';
/** The second console server's Deployment: virt-console's pod without --prometheus-url, behind no Service. */
const OWN_HISTORY = 'virt-console-own-history';

let browser: Browser;
let url: string;
const tokens: Record<'editor' | 'viewer' | 'outsider', string> = { editor: '', viewer: '', outsider: '' };

before(async () => {
  deleteNamespace(NS, true);
  deleteNamespace(OTHER_NS, true);
  kubectl(['create', 'namespace', NS]);
  kubectl(['create', 'namespace', OTHER_NS]);
  kubectl(['create', 'serviceaccount', 'outsider', '-n', OTHER_NS]);
  kubectl([
    'create',
    'rolebinding',
    'outsider',
    '-n',
    OTHER_NS,
    '--clusterrole',
    'kubevirt.io:view',
    '--serviceaccount',
    `${OTHER_NS}:outsider`,
  ]);
  tokens.outsider = kubectl(['create', 'token', 'outsider', '-n', OTHER_NS, '--duration', '1h']).trim();
  for (const [user, role] of [
    ['editor', 'kubevirt.io:edit'],
    ['viewer', 'kubevirt.io:view'],
  ] as const) {
    kubectl(['create', 'serviceaccount', user, '-n', NS]);
    kubectl(['create', 'rolebinding', user, '-n', NS, '--clusterrole', role, '--serviceaccount', `${NS}:${user}`]);
    // Kubernetes' own view role too, as a namespace's users have it: the VM page lists the VM's events.
    if (user === 'editor')
      kubectl(['create', 'rolebinding', 'editor-k8s-view', '-n', NS, '--clusterrole', 'view', '--serviceaccount', `${NS}:${user}`]);
    tokens[user] = kubectl(['create', 'token', user, '-n', NS, '--duration', '1h']).trim();
  }
  kubectl(['rollout', 'status', 'deployment/virt-console', '-n', INSTALL_NS, '--timeout=180s']);
  // Started now, so its history has the VM's samples by the time it is asked.
  const { spec } = JSON.parse(kubectl(['get', 'deployment', 'virt-console', '-n', INSTALL_NS, '-o', 'json']));
  const pod = spec.template.spec;
  pod.containers[0].command = pod.containers[0].command.map((arg: string) =>
    arg.startsWith('--prometheus-url=') ? '--prometheus-url=' : arg,
  );
  const labels = { 'kubevirt.io': OWN_HISTORY };
  apply({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: OWN_HISTORY, namespace: INSTALL_NS },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: pod } },
  });
  url = `https://${kubectl(['get', 'service', 'virt-console', '-n', INSTALL_NS, '-o', 'jsonpath={.spec.clusterIP}'])}/`;
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Root needs --no-sandbox; the console's certificate is signed by the kubevirt CA, which this browser does not know.
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    acceptInsecureCerts: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--window-size=1280,900'],
    defaultViewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await browser?.close();
  deleteNamespace(NS);
  deleteNamespace(OTHER_NS);
  kubectl(['delete', 'deployment', OWN_HISTORY, '-n', INSTALL_NS, '--ignore-not-found']);
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
/** An element's text as rendered (table cells apart), or '' when it is not there. */
const text = (page: Page, selector: string) =>
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text keeps a table's cells apart
  page.$eval(selector, (el: any) => el.innerText as string).catch(() => '');
async function waitForText(page: Page, selector: string, pattern: RegExp, seconds: number): Promise<string> {
  return eventually(`${pattern} in ${selector}`, seconds, async () => {
    const found = await text(page, selector);
    return pattern.test(found) && found;
  });
}
const rowCell = (page: Page, cell: string) => text(page, `tr[data-vm="${VM}"] td.${cell}`);

/** A GET of the console server (at `base`) with `user`'s token, as the page makes it: the status and the parsed body. */
function consoleGet(user: keyof typeof tokens, path: string, base = url): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, base);
    const request = get(
      target,
      { headers: { authorization: `Bearer ${tokens[user]}`, accept: 'application/json' }, rejectUnauthorized: false },
      (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) }));
      },
    );
    request.on('error', reject);
  });
}
/** How many points a graph's line has. */
const graphPoints = (page: Page, graph: string) =>
  page.$eval(`figure[data-graph="${graph}"] polyline`, (el: any) => Number(el.dataset.points)).catch(() => 0);

/** A new tab (its own sessionStorage) logged in with `user`'s token, at `hash`. */
async function loggedIn(user: 'editor' | 'viewer', hash: string, screenshot?: string, base = url): Promise<Page> {
  const page = await (await browser.createBrowserContext()).newPage();
  page.on('pageerror', (error) => console.error(`${user}'s page: ${error}`));
  await page.goto(`${base}${hash}`);
  await page.waitForSelector('#token');
  await page.type('#token', tokens[user]);
  if (screenshot) await shot(page, screenshot);
  await page.click('#login-submit');
  await waitForText(page, '#user', new RegExp(`system:serviceaccount:${NS}:${user}`), 30).catch(async (error) => {
    await shot(page, `${user}-login-failed`);
    throw new Error(`${(error as Error).message}; the page says: ${await text(page, '#error')}`);
  });
  return page;
}

let editor: Page;

test('an editor logs in with a token and sees the namespace, empty', async () => {
  editor = await loggedIn('editor', `#/ns/${NS}/vms`, '01-login');
  await eventually('the empty list', 30, () => editor.$eval('#vm-list-empty', (el: any) => !el.hidden).catch(() => false));
  await shot(editor, '02-vm-list-empty');
});

test('create: a containerDisk VM of a catalogue instance type with user data, its YAML shown before it is applied', async () => {
  await editor.click('#create-vm');
  await eventually('the catalogue in the instance type list', 30, () =>
    editor.$$eval('#vm-instancetype option', (options: any[]) => options.map((o) => o.value).includes('u1.nano')),
  );
  await editor.type('#vm-name', VM);
  await editor.$eval('#vm-user-data', (el: any) => {
    el.value = '#!/bin/sh\necho "user-data says hello from the web console"\n';
  });
  await editor.click('#vm-review-yaml');
  const yaml = await editor.$eval('#vm-yaml', (el: any) => el.value);
  for (const expected of [
    `name: ${VM}`,
    'runStrategy: Halted',
    'kind: VirtualMachineClusterInstancetype',
    'name: u1.nano',
    'containerDisk:',
    'user-data says hello',
  ])
    assert.ok(yaml.includes(expected), `${expected} in\n${yaml}`);
  assert.equal(kubectl(['get', 'vm', '-n', NS, '-o', 'name']).trim(), '', 'nothing is created before Create is pressed');
  await shot(editor, '03-create-review-yaml');
  await editor.click('#vm-create');
  await waitForText(editor, `tr[data-vm="${VM}"] td.status`, /^Stopped$/, 30);
  const vm = JSON.parse(kubectl(['get', 'vm', VM, '-n', NS, '-o', 'json']));
  assert.equal(vm.spec.instancetype.name, 'u1.nano');
  assert.equal(vm.spec.template.spec.volumes[1].cloudInitNoCloud.userData, '#!/bin/sh\necho "user-data says hello from the web console"\n');
  await shot(editor, '04-vm-list-created');
});

test('start: the list shows the VM running with its address and node', async () => {
  await editor.click(`tr[data-vm="${VM}"] button[data-action="start"]`);
  await waitForText(editor, `tr[data-vm="${VM}"] td.status`, /^Running$/, 240);
  await eventually('an IP address in the list', 120, async () => /^\d+\.\d+\.\d+\.\d+$/.test(await rowCell(editor, 'ip')));
  const node = kubectl(['get', 'vmi', VM, '-n', NS, '-o', 'jsonpath={.status.nodeName}']);
  assert.equal(await rowCell(editor, 'node'), node);
  // CPU and memory use from the local Prometheus: memory once scraped, CPU once a rate has two samples.
  await eventually('CPU and memory use in the list', 90, async () => /^(\d+m|\d+\.\d\d)$/.test(await rowCell(editor, 'cpu')));
  assert.match(await rowCell(editor, 'memory'), /^\d+\.\d (KiB|MiB|GiB)$/);
  assert.match(await text(editor, '#vm-usage-source'), /from Prometheus/);
  await shot(editor, '05-vm-list-running');
});

test('the VM page shows its details, conditions, events and YAML', async () => {
  await editor.click(`tr[data-vm="${VM}"] a[href$="/vm/${VM}"]`);
  await waitForText(editor, '#vm-details', /Running/, 30);
  assert.match(await text(editor, '#vm-details'), /u1\.nano/);
  await waitForText(editor, '#vm-conditions', /Ready\s+True/, 60);
  assert.match(await text(editor, '#vm-yaml'), /kind: VirtualMachine/);
  await waitForText(editor, '#vm-events tbody', /VirtualMachineInstance\s+Normal\s+\w+/, 30);
  await shot(editor, '06-vm-page');
});

test('the VM page graphs CPU, memory, network and disk from Prometheus', async () => {
  await waitForText(editor, '#vm-graphs-source', /^From Prometheus, the last hour\.$/, 30);
  // Only points of this VMI count: Prometheus keeps those of an earlier VM of the same name (an earlier run).
  const started = Date.parse(kubectl(['get', 'vmi', VM, '-n', NS, '-o', 'jsonpath={.metadata.creationTimestamp}'])) / 1000;
  const since = (points: [number, number][]) => points.filter(([t]) => t >= started);
  // Points come every 15 s; a rate needs two of Prometheus' 5 s samples.
  const metrics = await eventually('CPU and memory points since the VM started', 90, async () => {
    const { status, body } = await consoleGet('editor', `/console/v1/namespaces/${NS}/virtualmachineinstances/${VM}/metrics?minutes=60`);
    return status === 200 && since(body.series.cpu).length >= 2 && since(body.series.memory).length >= 2 && body;
  });
  assert.equal(metrics.source, 'prometheus');
  assert.ok(
    since(metrics.series.cpu).every(([, cores]) => cores >= 0 && cores < 4),
    JSON.stringify(metrics.series.cpu),
  );
  // The guest booted from its disk and took an address over the network since it started.
  assert.ok(since(metrics.series.networkReceive).length >= 1 && since(metrics.series.diskRead).length >= 1, JSON.stringify(metrics.series));
  // The page redraws every 15 s; a reload asks at once.
  await editor.reload();
  await eventually(
    'the graphs drawn',
    30,
    async () => (await graphPoints(editor, 'cpu')) >= 2 && (await graphPoints(editor, 'memory')) >= 2,
  );
  for (const graph of ['network', 'disk'])
    assert.equal(await editor.$$eval(`figure[data-graph="${graph}"] polyline`, (lines: any[]) => lines.length), 2, graph);
  assert.ok((await graphPoints(editor, 'network')) >= 1, 'network points');
  assert.match(await text(editor, 'figure[data-graph="memory"] figcaption'), /used \d+\.\d (KiB|MiB|GiB)/);
  const graphs = await editor.$('#vm-graphs');
  await graphs?.screenshot({ path: join(SCREENSHOTS, '06-vm-graphs.png') });
});

test("a user of another namespace gets the API's 403 for the VM's metrics and the namespace's figures", async () => {
  for (const path of [`/console/v1/namespaces/${NS}/virtualmachineinstances/${VM}/metrics`, `/console/v1/namespaces/${NS}/usage`]) {
    const { status, body } = await consoleGet('outsider', path);
    assert.equal(status, 403, path);
    assert.match(
      body.message,
      new RegExp(`system:serviceaccount:${OTHER_NS}:outsider" cannot (get|list) resource "virtualmachineinstances"`),
    );
  }
  const own = await consoleGet('editor', `/console/v1/namespaces/${NS}/usage`);
  assert.equal(own.status, 200);
  assert.ok(own.body.usage[VM]?.memory > 0, JSON.stringify(own.body));
});

/** What the terminal shows, row by row. */
const terminalText = (page: Page) =>
  page.$eval('.xterm-rows', (el: any) => [...el.children].map((row: any) => row.textContent ?? '').join('\n'));
async function waitForTerminal(page: Page, pattern: RegExp, seconds: number, poke?: () => Promise<void>) {
  return eventually(`${pattern} on the serial console`, seconds, async () => {
    if (pattern.test(await terminalText(page))) return true;
    await poke?.();
    return false;
  });
}

test('the serial console: the login prompt, typed input, pasted input', async () => {
  await editor.goto(`${url}#/ns/${NS}/vm/${VM}/console`);
  await waitForText(editor, '#stream-status', /connected/, 30);
  await editor.click('#terminal');
  // The prompt may have been written before the page connected: Enter asks for it again.
  let lastPoke = 0;
  await waitForTerminal(editor, /login: *$/m, 180, async () => {
    if (Date.now() - lastPoke < 5000) return;
    lastPoke = Date.now();
    await editor.keyboard.press('Enter');
  });
  await shot(editor, '07-serial-console-login');
  await editor.keyboard.type('cirros\n');
  await waitForTerminal(editor, /Password: *$/m, 30);
  await editor.keyboard.type('gocubsgo\n');
  await waitForTerminal(editor, /\$ *$/m, 30);
  await editor.keyboard.type('echo "typed: $((6*7))"\n');
  await waitForTerminal(editor, /^typed: 42/m, 30);
  // A paste as the browser delivers one (the clipboard's text in a paste event), which xterm.js sends to the guest.
  await editor.$eval('.xterm-helper-textarea', (el: any) => {
    const page = globalThis as any;
    const data = new page.DataTransfer();
    data.setData('text/plain', 'echo "pasted: $((7*8))"\n');
    el.dispatchEvent(new page.ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  });
  await waitForTerminal(editor, /^pasted: 56/m, 30);
  await shot(editor, '08-serial-console-commands');
});

/** Pixels of the VNC canvas that are drawn (opaque), and how many distinct colours among them. */
const vncPixels = (page: Page) =>
  page.$eval('#vnc-screen canvas', (canvas: any) => {
    if (!canvas.width || !canvas.height) return { drawn: 0, colours: 0 };
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      drawn++;
      if (colours.size < 64) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    return { drawn, colours: colours.size };
  });

test('VNC: the display is drawn, and a second viewer does not end the first', async () => {
  await editor.goto(`${url}#/ns/${NS}/vm/${VM}/vnc`);
  await waitForText(editor, '#stream-status', /connected, display shown/, 30);
  const first = await eventually('a framebuffer update on the canvas', 60, async () => {
    const pixels = await vncPixels(editor);
    return pixels.drawn > 0 && pixels;
  });
  assert.ok(first.drawn > 0, JSON.stringify(first));
  await shot(editor, '09-vnc');
  const second = await loggedIn('editor', `#/ns/${NS}/vm/${VM}/vnc`);
  await waitForText(second, '#stream-status', /connected, display shown/, 30);
  await eventually('the second viewer to be drawn', 60, async () => (await vncPixels(second)).drawn > 0);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.match(await text(editor, '#stream-status'), /connected, display shown/, 'the first viewer is still connected');
  await shot(second, '10-vnc-second-viewer');
  await second.browserContext().close();
});

test('a viewer sees the list, and the page shows the API 403 on start and on the console', async () => {
  const viewer = await loggedIn('viewer', `#/ns/${NS}/vms`);
  await waitForText(viewer, `tr[data-vm="${VM}"] td.status`, /^Running$/, 30);
  await viewer.click(`tr[data-vm="${VM}"] button[data-action="start"]`);
  await waitForText(
    viewer,
    '#error',
    /403 Forbidden: .*cannot update resource "virtualmachines\/start" in API group "subresources\.kubevirt\.io"/,
    30,
  );
  await shot(viewer, '11-viewer-start-forbidden');
  await viewer.goto(`${url}#/ns/${NS}/vm/${VM}/console`);
  await waitForText(viewer, '#error', /403 Forbidden: .*cannot get resource "virtualmachineinstances\/console"/, 30);
  assert.match(await text(viewer, '#stream-status'), /refused/);
  await shot(viewer, '12-viewer-console-forbidden');
  await viewer.browserContext().close();
});

test("without Prometheus, a console graphs the VM from its own history of virt-handler's metrics, behind the same access check", async () => {
  kubectl(['rollout', 'status', `deployment/${OWN_HISTORY}`, '-n', INSTALL_NS, '--timeout=60s']);
  const ip = kubectl(['get', 'pods', '-n', INSTALL_NS, '-l', `kubevirt.io=${OWN_HISTORY}`, '-o', 'jsonpath={.items[0].status.podIP}']);
  const base = `https://${ip}:8443/`;
  const path = `/console/v1/namespaces/${NS}/virtualmachineinstances/${VM}/metrics`;
  // It scrapes every 15 s: a rate needs two scrapes.
  const metrics = await eventually('CPU and memory in its own history', 60, async () => {
    const { status, body } = await consoleGet('editor', path, base);
    return status === 200 && body.series.cpu.length >= 1 && body.series.memory.length >= 2 && body;
  });
  assert.equal(metrics.source, 'console');
  assert.ok(
    metrics.series.memory.every(([, bytes]: [number, number]) => bytes > 1024 * 1024),
    JSON.stringify(metrics.series.memory),
  );
  const usage = await consoleGet('editor', `/console/v1/namespaces/${NS}/usage`, base);
  assert.equal(usage.body.source, 'console');
  assert.ok(usage.body.usage[VM]?.memory > 0, JSON.stringify(usage.body));
  assert.equal((await consoleGet('outsider', path, base)).status, 403);
  const page = await loggedIn('editor', `#/ns/${NS}/vm/${VM}`, undefined, base);
  await waitForText(page, '#vm-graphs-source', /^From the console's own samples/, 30);
  assert.ok((await graphPoints(page, 'memory')) >= 2);
  await (await page.$('#vm-graphs'))?.screenshot({ path: join(SCREENSHOTS, '06-vm-graphs-own-history.png') });
  await page.browserContext().close();
});

test('stop, then delete: the VM stops and goes', async () => {
  await editor.goto(`${url}#/ns/${NS}/vms`);
  await waitForText(editor, `tr[data-vm="${VM}"] td.status`, /^Running$/, 30);
  await editor.click(`tr[data-vm="${VM}"] button[data-action="stop"]`);
  await waitForText(editor, `tr[data-vm="${VM}"] td.status`, /^Stopped$/, 180);
  await shot(editor, '13-vm-list-stopped');
  editor.once('dialog', (dialog) => void dialog.accept());
  await editor.click(`tr[data-vm="${VM}"] button[data-action="delete"]`);
  await eventually('the VM to leave the list', 60, async () => (await editor.$(`tr[data-vm="${VM}"]`)) === null);
  assert.equal(kubectl(['get', 'vm', '-n', NS, '-o', 'name']).trim(), '');
  await shot(editor, '14-vm-list-deleted');
});

test('create from a DataVolume imported over HTTP, started at once, then deleted with its disk', async () => {
  const imageServer = startImageServer(NS);
  const name = 'web-dv';
  await editor.goto(`${url}#/ns/${NS}/create`);
  await eventually('the catalogue in the instance type list', 30, () =>
    editor.$$eval('#vm-instancetype option', (options: any[]) => options.map((o) => o.value).includes('u1.nano')),
  );
  await editor.type('#vm-name', name);
  await editor.select('#vm-disk-source', 'dataVolume');
  await editor.type('#vm-url', `${imageServer}/disk.qcow2`);
  await editor.$eval('#vm-size', (el: any) => {
    el.value = '128Mi';
  });
  await editor.click('#vm-start');
  await editor.click('#vm-review-yaml');
  const yaml = await editor.$eval('#vm-yaml', (el: any) => el.value as string);
  for (const expected of [
    'dataVolumeTemplates:',
    `name: ${name}-rootdisk`,
    `url: ${imageServer}/disk.qcow2`,
    'storage: 128Mi',
    'runStrategy: Always',
  ])
    assert.ok(yaml.includes(expected), `${expected} in\n${yaml}`);
  await shot(editor, '15-create-datavolume-review-yaml');
  await editor.click('#vm-create');
  const row = `tr[data-vm="${name}"]`;
  await waitForText(editor, `${row} td.status`, /^Running$/, 300);
  assert.equal(kubectl(['get', 'dv', `${name}-rootdisk`, '-n', NS, '-o', 'jsonpath={.status.phase}']), 'Succeeded');
  await shot(editor, '16-vm-list-datavolume-running');
  editor.once('dialog', (dialog) => void dialog.accept());
  await editor.click(`${row} button[data-action="delete"]`);
  await eventually('the VM to leave the list', 120, async () => (await editor.$(row)) === null);
  await eventually('its DataVolume to go with it', 120, () => kubectl(['get', 'dv', '-n', NS, '-o', 'name']).trim() === '');
});
