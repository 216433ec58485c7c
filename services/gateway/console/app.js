// The hubhooks console: sign in, then a hub's Events and Event logs tabs.
// Views are rebuilt from the location hash (#/hubs/<hub>/events or /logs);
// the token lives in this tab's sessionStorage only.
import { API, APIError, q } from './api.js';
import { h, clear, field, errorBox } from './dom.js';
import { eventsTab } from './events.js';
import { logsTab } from './logs.js';

const app = document.getElementById('app');
const who = document.getElementById('who');
const signout = document.getElementById('signout');
const TOKEN_KEY = 'hubhooks.token';

let session = null; // { api, admin, hubId }
let stopView = () => {};

signout.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  session = null;
  // Clearing a hash routes (hashchange); routing here as well would draw
  // the sign-in form twice, and what was typed into the first one is lost.
  if (location.hash.length > 1) location.hash = '';
  else route();
});
window.addEventListener('hashchange', route);
route();

async function route() {
  stopView();
  stopView = () => {};
  if (!session) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token === null) return signIn();
    try {
      session = await identify(token);
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      return signIn(e);
    }
  }
  who.textContent = session.admin ? (session.api.token ? 'Admin' : 'Admin (no token: this machine)') : 'Hub ' + session.hubId;
  signout.hidden = false;
  const m = location.hash.match(/^#\/hubs\/([A-Za-z0-9_-]{1,64})(?:\/(events|logs))?$/);
  if (!m) {
    if (!session.admin) { location.hash = '#/hubs/' + session.hubId + '/events'; return; }
    return hubPicker();
  }
  hubView(m[1], m[2] || 'events');
}

async function identify(token) {
  const api = new API(token);
  const me = await api.get('/whoami');
  return { api, admin: !!me.admin, hubId: me.hub_id };
}

function signIn(err) {
  who.textContent = '';
  signout.hidden = true;
  document.title = 'Sign in · hubhooks';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false' });
  const msg = h('div', { 'aria-live': 'polite' }, err ? errorBox(err) : null);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', onsubmit: async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    clear(msg, h('p', { class: 'state' }, 'Checking the token…'));
    try {
      session = await identify(input.value.trim());
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = '';
      route();
    } catch (e) {
      clear(msg, errorBox(e instanceof APIError && e.status === 401 ? new Error('This token is not valid (or was revoked).') : e));
      button.disabled = false;
      input.focus();
    }
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Use a hub token to manage that hub, or the admin token to manage every hub.'),
  field('Token', input, 'Kept in this browser tab only, until you sign out or close it. On a server without an admin token, leave it empty (callers on its own machine only).'),
  button, msg);
  clear(app, form);
  input.focus();
}

async function hubPicker() {
  document.title = 'Hubs · hubhooks';
  const list = h('div', {}, h('p', { class: 'state' }, 'Loading hubs…'));
  const input = h('input', { type: 'text', name: 'hub', pattern: '[A-Za-z0-9_-]{1,64}', required: true, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'hub-hint' });
  const form = h('form', { class: 'row', onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/hubs/' + input.value.trim() + '/events'; } },
    field('Hub id', input),
    h('button', { type: 'submit', class: 'primary' }, 'Open'));
  const hint = h('small', { class: 'muted', id: 'hub-hint' }, 'Letters, digits, - and _. A hub that does not exist yet is created when you first change it.');
  clear(app, h('section', { class: 'card' }, h('h1', {}, 'Hubs'), form, hint, list));
  try {
    const resp = await session.api.get('/hubs' + q({ page_size: 200 }));
    const hubs = resp.hubs || [];
    if (!hubs.length) return clear(list, h('p', { class: 'state empty' }, 'No hub is configured yet: open one by its id above.'));
    clear(list, h('ul', { class: 'hubs' }, hubs.map((hub) => h('li', {},
      h('a', { href: '#/hubs/' + hub.hub_id + '/events' }, hub.hub_id),
      h('span', { class: 'muted' }, ' · ' + (hub.events_enabled ? 'triggers on' : 'triggers off') + ' · ' + hub.callback_url_count + ' URL' + (hub.callback_url_count === 1 ? '' : 's'))))));
  } catch (e) {
    clear(list, errorBox(e, hubPicker));
  }
}

function hubView(hubId, tab) {
  document.title = (tab === 'logs' ? 'Event logs' : 'Events') + ' · ' + hubId + ' · hubhooks';
  const tabs = [['events', 'Events'], ['logs', 'Event logs']];
  const nav = h('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'Hub sections' },
    tabs.map(([key, label]) => h('a', {
      role: 'tab', href: '#/hubs/' + hubId + '/' + key, id: 'tab-' + key,
      'aria-selected': key === tab ? 'true' : 'false', 'aria-controls': 'panel',
    }, label)));
  nav.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
    const next = tabs[(tabs.findIndex(([k]) => k === tab) + 1) % tabs.length][0];
    location.hash = '#/hubs/' + hubId + '/' + next;
    setTimeout(() => document.getElementById('tab-' + next)?.focus(), 0);
  });
  const panel = h('section', { id: 'panel', role: 'tabpanel', 'aria-labelledby': 'tab-' + tab });
  clear(app, h('div', { class: 'hubhead' },
    session.admin ? h('a', { href: '#/hubs', class: 'muted' }, '← Hubs') : null,
    h('h1', {}, hubId)), nav, panel);
  const ctx = { api: session.api, hubId, admin: session.admin };
  stopView = (tab === 'logs' ? logsTab : eventsTab)(panel, ctx) || (() => {});
}
