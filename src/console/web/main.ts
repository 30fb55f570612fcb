// The web console's page: a hash router over the login, VM list, create, VM,
// serial console and VNC pages. Each page returns what stops it (timers,
// streams) when another is shown.
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { logout, namespace, token, whoAmI } from './api.ts';
import { createPage } from './create.ts';
import { showError } from './dom.ts';
import { loginPage } from './login.ts';
import { serialConsolePage } from './serial.ts';
import { vmPage } from './vm.ts';
import { vmListPage } from './vms.ts';
import { vncPage } from './vnc.ts';

const root = document.getElementById('page')!;
const user = document.getElementById('user')!;
let stop = () => {};

const ROUTES: [RegExp, (root: HTMLElement, ...params: string[]) => () => void][] = [
  [/^#\/ns\/([^/]+)\/vms$/, vmListPage],
  [/^#\/ns\/([^/]+)\/create$/, createPage],
  [/^#\/ns\/([^/]+)\/vm\/([^/]+)$/, vmPage],
  [/^#\/ns\/([^/]+)\/vm\/([^/]+)\/console$/, serialConsolePage],
  [/^#\/ns\/([^/]+)\/vm\/([^/]+)\/vnc$/, vncPage],
];

async function showUser() {
  user.textContent = await whoAmI().catch(() => '');
}

function route() {
  stop();
  root.replaceChildren();
  showError(undefined);
  const hash = location.hash;
  if (!token()) {
    user.textContent = '';
    stop = loginPage(root, (username) => {
      route();
      user.textContent = username;
    });
    return;
  }
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      stop = page(root, ...match.slice(1).map(decodeURIComponent));
      return;
    }
  }
  location.hash = `#/ns/${namespace()}/vms`;
}

document.getElementById('logout')!.addEventListener('click', () => {
  logout();
  location.hash = '#/login';
  route();
});
window.addEventListener('hashchange', route);
route();
if (token()) void showUser();
