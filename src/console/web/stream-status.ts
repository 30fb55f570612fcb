// What the console and VNC pages say about their stream: connecting, connected,
// or why it ended (the API's refusal, as the server closes a refused stream).
import { showError } from './dom.ts';
import { streamRefusal } from './model.ts';

/** Follows a stream's socket in `status`; a refusal also goes to the error banner. */
export function followStream(socket: WebSocket, status: HTMLElement, what: string): void {
  status.textContent = `${what}: connecting`;
  socket.addEventListener('open', () => (status.textContent = `${what}: connected`));
  // A refusal's whole Status comes as a text message before the close, whose reason is cut to 123 bytes.
  let refusalStatus: string | undefined;
  socket.addEventListener('message', (event) => {
    if (typeof event.data === 'string') refusalStatus = event.data;
  });
  socket.addEventListener('close', (event) => {
    const refusal = streamRefusal(event.code, refusalStatus ?? event.reason);
    status.textContent = `${what}: ${refusal ? 'refused' : 'disconnected'}`;
    if (refusal) showError(`${what} refused: ${refusal}`);
  });
}
