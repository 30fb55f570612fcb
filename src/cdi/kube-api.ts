// The DataVolume controller's API writes over client-node, and nothing more.
import { get } from 'node:https';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import type { CDIConfig, DataVolume } from '../api/types.ts';
import { CDI_GROUP, CDI_VERSION } from '../contract/cdi.ts';
import type { DataVolumeControllerApi, FillProgress } from './datavolume-controller.ts';
import type { FillPodClientTls } from './fill-pod-client.ts';

const DATAVOLUMES = { group: CDI_GROUP, version: CDI_VERSION, plural: 'datavolumes' };
const CDICONFIGS = { group: CDI_GROUP, version: CDI_VERSION, plural: 'cdiconfigs' };

export class CdiKubeApi implements DataVolumeControllerApi {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
  }

  async createClaim(namespace: string, claim: V1PersistentVolumeClaim): Promise<void> {
    await this.#core.createNamespacedPersistentVolumeClaim({ namespace, body: claim });
  }

  async annotateClaim(namespace: string, name: string, annotations: Record<string, string>): Promise<void> {
    const patch = Object.entries(annotations).map(([key, value]) => ({
      op: 'add',
      path: `/metadata/annotations/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`,
      value,
    }));
    await this.#core.patchNamespacedPersistentVolumeClaim({ namespace, name, body: patch });
  }

  async createPod(namespace: string, pod: V1Pod): Promise<void> {
    await this.#core.createNamespacedPod({ namespace, body: pod });
  }

  async deletePod(namespace: string, name: string): Promise<void> {
    await this.#core.deleteNamespacedPod({ namespace, name });
  }

  async replaceDataVolumeStatus(namespace: string, name: string, dv: DataVolume): Promise<void> {
    await this.#custom.replaceNamespacedCustomObjectStatus({ ...DATAVOLUMES, namespace, name, body: dv });
  }

  fetchProgress(url: string, tls: FillPodClientTls): Promise<FillProgress | undefined> {
    // The pod may hold the request for as long as the URL's wait says.
    const timeoutMs = Number(new URL(url).searchParams.get('wait') ?? 0) + 1000;
    return new Promise((resolve, reject) => {
      const req = get(url, { ...tls, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve(undefined);
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString()) as { progress?: number; complete?: boolean };
            resolve(typeof body.progress === 'number' ? { progress: body.progress, complete: body.complete === true } : undefined);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from the fill pod within ${timeoutMs} ms`)));
      req.on('error', reject);
    });
  }

  async readCdiConfig(): Promise<CDIConfig | undefined> {
    return (await this.#custom.getClusterCustomObject({ ...CDICONFIGS, name: 'config' }).catch((error: { code?: number }) => {
      if (error.code === 404) return undefined;
      throw error;
    })) as CDIConfig | undefined;
  }

  async createCdiConfig(config: CDIConfig): Promise<void> {
    await this.#custom.createClusterCustomObject({ ...CDICONFIGS, body: config });
  }

  async replaceCdiConfig(config: CDIConfig): Promise<void> {
    await this.#custom.replaceClusterCustomObject({ ...CDICONFIGS, name: 'config', body: config });
  }
}
