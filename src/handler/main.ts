// virt-handler, the node agent (a DaemonSet). So far it heartbeats its node;
// syncing the VMIs on the node with their launchers comes next.
import { parseArgs } from 'node:util';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadKubeConfig } from '../lib/kube.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { heartbeatPatch } from './heartbeat.ts';

const log = createLogger('virt-handler');
exitOnSignals(log);
const { values: flags } = parseArgs({ options: { 'heartbeat-interval-seconds': { type: 'string', default: '60' } } });
const NODE = process.env.NODE_NAME;
if (!NODE) {
  log.error('NODE_NAME is not set; virt-handler must run with the downward API giving it spec.nodeName');
  process.exit(2);
}
const core = loadKubeConfig().makeApiClient(CoreV1Api);

async function heartbeat(schedulable: boolean) {
  await core.patchNode({ name: NODE!, body: heartbeatPatch(new Date(), schedulable) }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

const beat = () =>
  heartbeat(true).catch((error: Error) => log.warning('heartbeat failed', { node: NODE, error: error.message.split('\n')[0] }));
await beat();
log.info('heartbeating', { node: NODE, intervalSeconds: Number(flags['heartbeat-interval-seconds']) });
setInterval(beat, Number(flags['heartbeat-interval-seconds']) * 1000);
