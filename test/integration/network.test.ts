// virt-handler's network script run for real, in a throwaway network
// namespace with a stand-in eth0: the kernel and the real ip and iptables
// tools decide whether the script does what the plan says.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { networkScript, planPodNetwork } from '../../src/handler/network.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const namespaces: string[] = [];
after(() => {
  for (const ns of namespaces) execFileSync('ip', ['netns', 'delete', ns]);
});

const run = (argv: string[], input?: string) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input });
const tool = (name: string) => run(['sh', '-c', `command -v ${name}`]).trim();

/** A network namespace whose eth0 looks like a pod's. */
function podNamespace(): string {
  const ns = `kvts-net-test-${process.pid}-${namespaces.length}`;
  run(['ip', 'netns', 'add', ns]);
  namespaces.push(ns);
  // A veth pair, both ends inside: this kernel may lack the dummy driver.
  run(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  run(['ip', '-n', ns, 'addr', 'add', '10.244.9.7/24', 'dev', 'eth0']);
  run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  return ns;
}

const pod = { ip: '10.244.9.7', prefixLength: 24, gateway: '10.244.9.1', mac: '9a:00:00:00:09:07', mtu: 1500 };
function vmi(name: string): VirtualMachineInstance {
  const v = defaultNewVmi({ ...example<VirtualMachineInstance>(name), metadata: { ...example<VirtualMachineInstance>(name).metadata, namespace: 'ns', uid: 'uid-1' } }, new ClusterConfig({}), fixedContext());
  return v;
}

test('masquerade: the script builds the bridge and tap, forwards only the declared port and sets the sysctls', () => {
  const ns = podNamespace();
  const plan = planPodNetwork(vmi('vmi-masquerade.yaml'), pod);
  run(['ip', 'netns', 'exec', ns, 'sh', '-ec', networkScript(plan.commands, tool)]);
  const tap = JSON.parse(run(['ip', '-n', ns, '-j', '-d', 'link', 'show', 'tap0']))[0];
  assert.equal(tap.master, 'k6t-eth0');
  assert.equal(String(tap.linkinfo.info_data.user), '107');
  const bridge = JSON.parse(run(['ip', '-n', ns, '-j', 'addr', 'show', 'k6t-eth0']))[0];
  assert.deepEqual(bridge.addr_info.filter((a: { family: string }) => a.family === 'inet').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`), ['10.0.2.1/24']);
  const nat = run(['ip', 'netns', 'exec', ns, tool('iptables-save'), '-t', 'nat']);
  assert.match(nat, /-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10\.0\.2\.2/);
  assert.match(nat, /-A POSTROUTING -s 10\.0\.2\.2\/32 -o eth0 -j MASQUERADE/);
  assert.equal(run(['ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim(), '1');
  assert.equal(run(['ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).trim(), '0');
  assert.equal(run(['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).trim() === '0', false, 'the host\'s own setting is untouched');
});

test('bridge: the script moves the pod address off eth0 and enslaves it, and a failing command stops the script', () => {
  const ns = podNamespace();
  const plan = planPodNetwork(vmi('vmi-nocloud.yaml'), pod);
  run(['ip', 'netns', 'exec', ns, 'sh', '-ec', networkScript(plan.commands, tool)]);
  const eth0 = JSON.parse(run(['ip', '-n', ns, '-j', 'addr', 'show', 'eth0']))[0];
  assert.equal(eth0.master, 'k6t-eth0');
  assert.deepEqual(eth0.addr_info.filter((a: { family: string }) => a.family === 'inet'), []);
  assert.notEqual(eth0.address, pod.mac);
  const route = JSON.parse(run(['ip', '-n', ns, '-j', 'route', 'show', '10.244.9.7']))[0];
  assert.equal(route.dev, 'k6t-eth0');
  // Run again on what is already there: ip -batch stops at the first error, and so does the script.
  assert.throws(() => run(['ip', 'netns', 'exec', ns, 'sh', '-ec', networkScript(plan.commands, tool)]));
});
