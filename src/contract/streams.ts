// What the web console's page and server agree on for the console and VNC
// WebSockets: upstream's subprotocol for the bytes, kube-apiserver's
// subprotocol for the bearer token (a browser cannot set a WebSocket's
// headers), and how a refused stream is told to the page. No Node APIs: the
// page's bundle imports this too.

/** Byte streams in binary messages, as upstream's virtctl, virt-api and virt-handler carry them. */
export const PLAIN_STREAM_PROTOCOL = 'plain.kubevirt.io';

/** `<prefix><token, base64url without padding>`: how kube-apiserver takes a bearer token offered as a WebSocket subprotocol. */
export const BEARER_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

/**
 * A stream refused by the API (a browser cannot read a refused handshake's status) is accepted and closed
 * with this plus the HTTP status, the API's message as the close reason, after the whole Status as a text message.
 */
export const REFUSAL_CLOSE_BASE = 4000;

/** The message of a Kubernetes Status in JSON, or the text itself when it is not one. */
export function statusMessageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not a Status: its text is the message.
  }
  return body.trim();
}
