// The Events tab: triggers toggle, callback URLs, secret, list of events and
// the Test dialog.
import { h, clear, field, toast, errorBox, pretty } from './dom.js';

const MAX_URLS = 5;

export function eventsTab(panel, { api, hubId }) {
  const base = '/hubs/' + hubId;
  clear(panel, h('p', { class: 'state' }, 'Loading the hub…'));
  let cfg = null;
  let rules = [];

  load();

  async function load() {
    try {
      [cfg, rules] = await Promise.all([api.get(base + '/config'), api.get('/event-types').then((r) => r.rules || [])]);
      render();
    } catch (e) {
      clear(panel, errorBox(e));
    }
  }

  function render() {
    clear(panel, triggers(), urls(), secret(), events());
  }

  function triggers() {
    const box = h('input', { type: 'checkbox', role: 'switch', id: 'enabled', checked: cfg.events_enabled });
    const msg = h('div', { 'aria-live': 'polite' });
    box.addEventListener('change', async () => {
      box.disabled = true;
      try {
        cfg = await api.put(base + '/events-enabled', { enabled: box.checked });
        clear(msg);
        toast(cfg.events_enabled ? 'Event triggers enabled' : 'Event triggers disabled');
      } catch (e) {
        box.checked = !box.checked;
        clear(msg, errorBox(e));
      }
      box.disabled = false;
    });
    return h('section', { class: 'card' },
      h('div', { class: 'switch' }, box, h('label', { for: 'enabled' }, 'Enable event triggers')),
      h('p', { class: 'muted' }, 'When on, every event of this hub is sent to each callback URL below.'),
      msg);
  }

  function urls() {
    // rows: { id (existing URL id or ''), original, input, error }
    const rows = [];
    const list = h('ol', { class: 'urls' });
    const status = h('div', { 'aria-live': 'polite' });
    const addRow = (u) => {
      const input = h('input', { type: 'url', value: u ? u.url : '', placeholder: 'https://example.com/webhooks', spellcheck: 'false', 'aria-label': 'Callback URL ' + (rows.length + 1) });
      const error = h('p', { class: 'error', role: 'alert', hidden: true });
      const row = { id: u ? u.id : '', original: u ? u.url : '', input, error, removed: false };
      const li = h('li', {}, h('div', { class: 'row' }, input,
        h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove callback URL ' + (rows.length + 1), onclick: () => { row.removed = true; li.hidden = true; } }, 'Remove')), error);
      rows.push(row);
      list.append(li);
      return input;
    };
    for (const u of cfg.callback_urls || []) addRow(u);
    const save = async (ev) => {
      ev.preventDefault();
      clear(status, h('p', { class: 'state' }, 'Saving…'));
      let failed = 0;
      const fail = (row, e) => { failed++; row.error.textContent = e.message; row.error.hidden = false; };
      for (const row of rows) {
        row.error.hidden = true;
        const url = row.input.value.trim();
        try {
          if (row.id && row.removed) {
            cfg = await api.del(base + '/callback-urls/' + encodeURIComponent(row.id));
            row.id = '';
          } else if (row.id && !url) {
            throw new Error('Type the new address, or use Remove to delete this URL.');
          } else if (row.id && url !== row.original) {
            // Same id, new address: the URL keeps its settings and its
            // pending retries follow it; a refused address changes nothing.
            cfg = await api.put(base + '/callback-urls/' + encodeURIComponent(row.id) + '/url', { url });
          } else if (!row.id && !row.removed && url) {
            cfg = await api.post(base + '/callback-urls', { url });
            const held = new Set(rows.map((r) => r.id));
            row.id = ((cfg.callback_urls || []).find((u) => !held.has(u.id)) || {}).id || '';
          }
          if (row.id) {
            row.original = ((cfg.callback_urls || []).find((u) => u.id === row.id) || {}).url || url;
            row.input.value = row.original;
          }
        } catch (e) {
          fail(row, e);
        }
      }
      if (failed) {
        // Keep what was typed; what was saved is saved (a second Save sends
        // only what is still different).
        clear(status, h('p', { class: 'error', role: 'alert' }, failed === 1 ? 'One URL was refused; see the reason above.' : failed + ' URLs were refused; see the reasons above.'));
        return;
      }
      toast('Callback URLs saved');
      render();
    };
    const add = h('button', { type: 'button', class: 'secondary', onclick: () => addRow(null).focus() }, 'Add a URL');
    return h('section', { class: 'card' },
      h('h2', {}, 'Callback URL'),
      h('p', { class: 'muted' }, 'Up to ' + MAX_URLS + ' URLs. Each gets every webhook event, signed with the secret below.'),
      h('form', { onsubmit: save, novalidate: true }, list,
        (cfg.callback_urls || []).length ? null : h('p', { class: 'state empty' }, 'No callback URL yet: add one.'),
        h('div', { class: 'row' }, add, h('button', { type: 'submit', class: 'primary' }, 'Save'))),
      status);
  }

  function secret() {
    let shown = false;
    const value = h('code', { class: 'secret', id: 'secret-value' });
    const reveal = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false', 'aria-controls': 'secret-value' }, 'Reveal');
    const show = () => {
      value.textContent = !cfg.secret ? '(none yet: it is made with the first change)' : shown ? cfg.secret : cfg.secret.slice(0, 6) + '•'.repeat(24);
      reveal.textContent = shown ? 'Hide' : 'Reveal';
      reveal.setAttribute('aria-pressed', String(shown));
    };
    reveal.addEventListener('click', () => { shown = !shown; show(); });
    show();
    const copy = h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try { await navigator.clipboard.writeText(cfg.secret); toast('Secret copied'); } catch { toast('Copy is not allowed here: reveal the secret and copy it by hand'); }
    } }, 'Copy');
    const dialog = h('dialog', { 'aria-labelledby': 'gen-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'gen-title' }, 'Generate a new secret?'),
        h('p', {}, 'Webhooks are signed with the new secret from the next delivery on. The current secret keeps signing beside it for a grace period (24 hours unless your operator changed it), so your receivers can switch without losing a webhook.'),
        h('div', { class: 'row' },
          h('button', { value: 'cancel', class: 'secondary' }, 'Cancel'),
          h('button', { value: 'ok', class: 'danger' }, 'Generate new'))));
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'ok') return;
      try {
        const resp = await api.post(base + '/secret');
        cfg = resp.hub_config;
        shown = false;
        show();
        toast('New secret generated; the old one signs until ' + new Date(resp.previous_secret_expires_at).toLocaleString());
      } catch (e) {
        toast(e.message);
      }
    });
    const gen = h('button', { type: 'button', class: 'secondary', onclick: () => { dialog.returnValue = ''; dialog.showModal(); } }, 'Generate new');
    return h('section', { class: 'card' }, h('h2', {}, 'Secret'),
      h('p', { class: 'muted' }, 'Sent as x-rapidapi-webhook-secret and used for the webhook-signature header.'),
      h('div', { class: 'row wrap' }, value, reveal, copy, gen), dialog);
  }

  function events() {
    const rows = rules.map((r) => h('tr', {},
      h('td', { 'data-label': 'Event' }, r.name),
      h('td', { 'data-label': 'Triggers' }, (r.emits || []).length ? h('ul', { class: 'plain' }, r.emits.map((e) => h('li', {}, h('code', {}, e.type)))) : h('span', { class: 'muted' }, 'nothing')),
      h('td', { 'data-label': '' }, (r.emits || []).length ? h('button', { type: 'button', class: 'link', onclick: () => testDialog(r) }, 'Test event', h('span', { class: 'sr' }, ' ' + r.name)) : null)));
    return h('section', { class: 'card' }, h('h2', {}, 'List of events'),
      h('p', { class: 'muted' }, 'Each event of the hub and the webhook events it sends.'),
      rules.length ? h('table', { class: 'events' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'Webhook events triggered'), h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'Actions')))), h('tbody', {}, rows))
        : h('p', { class: 'state empty' }, 'No event types are configured.'));
  }

  function testDialog(rule) {
    const urls = cfg.callback_urls || [];
    const urlSel = h('select', {}, urls.map((u) => h('option', { value: u.url }, u.url)));
    const typeSel = h('select', {}, rule.emits.map((e) => h('option', { value: e.type }, e.type)));
    const data = h('textarea', { rows: 10, spellcheck: 'false' });
    const request = h('div', { class: 'exchange', 'aria-live': 'polite' });
    const response = h('div', { class: 'exchange', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Nothing sent yet.'));
    const send = h('button', { type: 'button', class: 'primary' }, 'Test event');
    const dialog = h('dialog', { class: 'wide', 'aria-labelledby': 'test-title' },
      h('h2', { id: 'test-title' }, 'Test event: ' + rule.name),
      urls.length ? null : h('p', { class: 'error', role: 'alert' }, 'Add a callback URL first: the test event is sent to one of them.'),
      h('div', { class: 'row wrap' }, field('Test URL', urlSel), field('Webhook event', typeSel)),
      h('h3', {}, 'Request'), request,
      field('Body data (editable JSON object)', data, 'Replaces the sample data; the request above shows what will be sent.'),
      h('div', { class: 'row' }, send, h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Close')),
      h('h3', {}, 'Response'), response);
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    let edited = false;
    const args = () => ({ event_type: typeSel.value, url: urlSel.value, body: edited ? data.value : '' });
    const preview = async () => {
      if (!urls.length) return;
      clear(request, h('p', { class: 'state' }, 'Building the request…'));
      try {
        const r = (await api.post(base + '/test-events:preview', args())).request;
        clear(request, exchangeRequest(r));
        if (!edited) data.value = JSON.stringify(JSON.parse(r.body).data, null, 2);
      } catch (e) {
        clear(request, errorBox(e));
      }
    };
    urlSel.addEventListener('change', preview);
    typeSel.addEventListener('change', () => { edited = false; preview(); });
    let timer;
    data.addEventListener('input', () => { edited = true; clearTimeout(timer); timer = setTimeout(preview, 400); });
    send.disabled = !urls.length;
    send.addEventListener('click', async () => {
      send.disabled = true;
      clear(response, h('p', { class: 'state' }, 'Sending…'));
      try {
        const r = await api.post(base + '/test-events', args());
        clear(request, exchangeRequest(r.request));
        clear(response, exchangeResponse(r.response));
      } catch (e) {
        clear(response, errorBox(e));
      }
      send.disabled = false;
    });
    preview();
  }
}

// exchangeRequest shows a request: method, URL, headers, pretty body.
export function exchangeRequest(r) {
  return h('div', {},
    h('p', {}, h('code', {}, (r.method || 'POST') + ' ' + r.url)),
    headersTable(r.headers),
    h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Request body' }, pretty(r.body)));
}

// exchangeResponse shows a response: status, time, error, headers, body.
export function exchangeResponse(r) {
  const code = r.status_code || 0;
  return h('div', {},
    h('p', {}, h('span', { class: 'badge ' + (code >= 200 && code < 300 ? 'ok' : 'bad') }, code ? 'HTTP ' + code : 'no response'),
      ' in ' + (r.duration_ms || 0) + ' ms'),
    r.error ? h('p', { class: 'error' }, r.error) : null,
    headersTable(r.headers),
    r.body ? h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Response body' }, pretty(r.body) + (r.body_truncated ? '\n… (truncated)' : '')) : h('p', { class: 'muted' }, 'Empty body.'));
}

function headersTable(headers) {
  const keys = Object.keys(headers || {}).sort();
  if (!keys.length) return null;
  return h('table', { class: 'headers' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, headers[k])))));
}
