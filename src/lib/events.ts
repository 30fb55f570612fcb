// Kubernetes Events about kubevirt-ts's objects, so that `kubectl describe`
// tells what happened to a VM or VMI. Recording never blocks or fails the
// caller: an event that cannot be written is logged and dropped.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from './log.ts';

export interface EventSubject {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type EventRecorder = (subject: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string) => void;

export function eventRecorder(kc: KubeConfig, component: string, log: Logger): EventRecorder {
  const core = kc.makeApiClient(CoreV1Api);
  const host = process.env.NODE_NAME ?? process.env.HOSTNAME;
  return (subject, type, reason, message) => {
    const namespace = subject.metadata.namespace ?? 'default';
    const now = new Date();
    core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${subject.metadata.name}.`, namespace },
          involvedObject: {
            apiVersion: subject.apiVersion,
            kind: subject.kind,
            name: subject.metadata.name,
            namespace: subject.metadata.namespace,
            uid: subject.metadata.uid,
            resourceVersion: subject.metadata.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component, ...(host ? { host } : {}) },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          reportingComponent: component,
          reportingInstance: host ?? component,
        },
      })
      .catch((error: Error) => log.warning('could not record an event', { reason, error: error.message.split('\n')[0] }));
  };
}
