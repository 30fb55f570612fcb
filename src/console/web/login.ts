// The login page: a bearer token (a service account's, or one an OIDC login
// gave), checked with a SelfSubjectReview and kept in this tab's sessionStorage.
import { setToken, whoAmI } from './api.ts';
import { h, showError } from './dom.ts';

/** `loggedIn` runs once the token is accepted, with the user kube-apiserver took it for: the page then shows what was asked for. */
export function loginPage(root: HTMLElement, loggedIn: (username: string) => void): () => void {
  const input = h('textarea', { id: 'token', rows: '4', cols: '80', placeholder: 'paste your bearer token', autocomplete: 'off' });
  const submit = async (event: Event) => {
    event.preventDefault();
    setToken(input.value.trim());
    try {
      loggedIn(await whoAmI());
    } catch (error) {
      setToken('');
      showError(`login failed: ${(error as Error).message}`);
    }
  };
  root.append(
    h(
      'form',
      { id: 'login', onsubmit: submit },
      h('h2', {}, 'Log in'),
      h(
        'p',
        {},
        'The console acts with your own Kubernetes rights: paste a bearer token, e.g. from ',
        h('code', {}, 'kubectl create token <service-account>'),
        '. It is kept in this tab only.',
      ),
      input,
      h('div', {}, h('button', { type: 'submit', id: 'login-submit' }, 'Log in')),
    ),
  );
  input.focus();
  return () => {};
}
