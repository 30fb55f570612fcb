// A small DOM builder and the page's shared pieces (error banner, notices).

type Child = Node | string | undefined | false;
type Attrs = Record<string, string | boolean | ((event: Event) => void) | undefined>;

/** An element with attributes (on* keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children) if (child !== undefined && child !== false) el.append(child);
  return el;
}

/** Shows an error in the page's banner (role=alert), or clears it. */
export function showError(message: string | undefined): void {
  const banner = document.getElementById('error')!;
  banner.textContent = message ?? '';
  banner.hidden = !message;
}

/** Shows a short notice (an action taken). */
export function showNotice(message: string): void {
  const notice = document.getElementById('notice')!;
  notice.textContent = message;
}

/** A table with a header row; its body is returned for the caller to fill. */
export function table(headers: string[], attrs: Attrs = {}): { table: HTMLTableElement; body: HTMLTableSectionElement } {
  const body = h('tbody');
  return { table: h('table', attrs, h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', {}, x)))), body), body };
}
