// The part of noVNC's RFB class the VNC page uses (noVNC ships no types).
declare module '@novnc/novnc' {
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: { shared?: boolean; wsProtocols?: string[] });
    scaleViewport: boolean;
    viewOnly: boolean;
    disconnect(): void;
    sendCtrlAltDel(): void;
  }
}
