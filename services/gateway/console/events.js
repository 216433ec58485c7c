// The Events tab: triggers toggle, callback URLs, secret, list of events and
// the Test dialog. It follows the hub's configuration (config:watch): a
// change made elsewhere (hubhooks disabling a failing URL, another admin)
// is shown at once, or offered when there are unsaved edits.
import { h, clear, field, id, toast, errorBox, pretty, fmtTime } from './dom.js';

const MAX_URLS = 5;

export function eventsTab(panel, { api, hubId }) {
  const base = '/hubs/' + hubId;
  clear(panel, h('p', { class: 'state' }, 'Loading the hub…'));
  let cfg = null;
  let rules = [];
  let types = []; // every webhook event type
  let dirty = false; // the URL form has edits not saved
  let saving = false;
  let stopped = false;
  let stopWatch = () => {};
  const note = h('div', { 'aria-live': 'polite' });

  load();
  return () => { stopped = true; stopWatch(); };

  async function load() {
    try {
      const [c, et] = await Promise.all([api.get(base + '/config'), api.get('/event-types')]);
      if (stopped) return;
      [cfg, rules, types] = [c, et.rules || [], et.webhook_event_types || []];
      render();
      watch();
    } catch (e) {
      clear(panel, errorBox(e, () => { clear(panel, h('p', { class: 'state' }, 'Loading the hub…')); load(); }));
    }
  }

  function render() {
    dirty = false;
    clear(note);
    clear(panel, note, triggers(), urls(), secret(), events());
  }

  // watch shows each newer version of the configuration: at once, unless
  // that would throw away edits (then it offers to).
  function watch() {
    stopWatch = api.tail(base + '/config:watch', {
      onLive: () => {},
      onResult: (c) => {
        if (!c || stopped || Number(c.version) <= Number(cfg.version)) return;
        if (!dirty && !saving) { cfg = c; render(); return; }
        clear(note, h('p', { class: 'card notice' }, 'This hub\'s configuration was changed elsewhere. ',
          h('button', { type: 'button', class: 'secondary small', onclick: () => { cfg = c; render(); } }, 'Show it'),
          ' (drops the changes you have not saved)'));
      },
      onEnd: (e) => {
        if (stopped) return;
        clear(note, h('p', { class: 'card muted' }, 'Changes made elsewhere are not shown as they happen (' + e.message + '). ',
          h('button', { type: 'button', class: 'secondary small', onclick: () => { clear(note); watch(); } }, 'Follow again')));
      },
    });
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
      h('p', { class: 'muted' }, 'When on, every event of this hub is sent to the callback URLs below, each as its settings say.'),
      msg);
  }

  function urls() {
    // rows: { id (existing URL id or ''), original, input, error, removed, settings }
    const rows = [];
    const list = h('ol', { class: 'urls' });
    const status = h('div', { 'aria-live': 'polite' });
    const addRow = (u) => {
      const n = rows.length + 1;
      const input = h('input', { type: 'url', value: u ? u.url : '', placeholder: 'https://example.com/webhooks', spellcheck: 'false', 'aria-label': 'Callback URL ' + n });
      const error = h('p', { class: 'error', role: 'alert', hidden: true });
      const row = { id: u ? u.id : '', original: u ? u.url : '', input, error, removed: false, settings: urlSettings(u, n) };
      const li = h('li', { class: u && u.disabled ? 'off' : null });
      li.append(
        h('div', { class: 'row' }, input,
          h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove callback URL ' + n, onclick: () => { row.removed = true; li.hidden = true; dirty = true; } }, 'Remove')),
        u ? urlState(u, n, li, error) : '',
        row.settings.el, error);
      rows.push(row);
      list.append(li);
      return input;
    };
    for (const u of cfg.callback_urls || []) addRow(u);
    const save = async (ev) => {
      ev.preventDefault();
      saving = true;
      try {
        await saveAll();
      } finally {
        saving = false;
      }
    };
    const saveAll = async () => {
      clear(status, h('p', { class: 'state' }, 'Saving…'));
      let failed = 0;
      const fail = (row, e) => { failed++; row.error.textContent = e.message; row.error.hidden = false; };
      for (const row of rows) {
        row.error.hidden = true;
        const url = row.input.value.trim();
        try {
          const wanted = row.removed ? null : row.settings.value();
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
            cfg = await api.post(base + '/callback-urls', { url, description: wanted.description, event_types: wanted.event_types });
            const held = new Set(rows.map((r) => r.id));
            row.id = ((cfg.callback_urls || []).find((u) => !held.has(u.id)) || {}).id || '';
          }
          const stored = row.id ? (cfg.callback_urls || []).find((u) => u.id === row.id) : null;
          if (stored) {
            // What this URL receives and its description: sent only when
            // they differ from what is stored.
            const change = {};
            if (wanted.description !== (stored.description || '')) change.description = wanted.description;
            if (!sameSet(wanted.event_types, stored.event_types || [])) change.event_types = { types: wanted.event_types };
            if (Object.keys(change).length) cfg = await api.patch(base + '/callback-urls/' + encodeURIComponent(row.id), change);
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
    // A URL's switch acts at once: it is no edit.
    function edited(ev) { if (ev.target.getAttribute('role') !== 'switch') dirty = true; }
    const add = h('button', { type: 'button', class: 'secondary', onclick: () => { dirty = true; addRow(null).focus(); } }, 'Add a URL');
    return h('section', { class: 'card' },
      h('h2', {}, 'Callback URL'),
      h('p', { class: 'muted' }, 'Up to ' + MAX_URLS + ' URLs. Each gets every webhook event unless its settings choose some, signed with the secret below.'),
      h('form', { onsubmit: save, novalidate: true, oninput: edited, onchange: edited }, list,
        (cfg.callback_urls || []).length ? null : h('p', { class: 'state empty' }, 'No callback URL yet: add one.'),
        h('div', { class: 'row' }, add, h('button', { type: 'submit', class: 'primary' }, 'Save'))),
      status);
  }

  // urlState is a stored URL's switch, which acts at once (like the
  // triggers toggle), and, while it is off, why and since when, with a
  // one-click Re-enable.
  function urlState(u, n, li, error) {
    const box = h('input', { type: 'checkbox', role: 'switch', checked: !u.disabled, id: 'url-on-' + u.id });
    const notice = h('div', { class: 'notice', 'aria-live': 'polite' });
    const set = async (enabled) => {
      box.disabled = true;
      error.hidden = true;
      try {
        cfg = await api.patch(base + '/callback-urls/' + encodeURIComponent(u.id), { enabled });
        u = (cfg.callback_urls || []).find((x) => x.id === u.id) || u;
        toast((u.disabled ? 'Disabled ' : 'Enabled ') + u.url);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
      box.disabled = false;
      show();
    };
    const show = () => {
      box.checked = !u.disabled;
      li.classList.toggle('off', !!u.disabled);
      if (!u.disabled) { clear(notice); return; }
      clear(notice, h('p', {},
        h('span', { class: 'badge bad' }, 'disabled'), ' ',
        (u.disabled_reason || 'No webhook is sent to this URL.') + (u.disabled_at ? ' (' + fmtTime(u.disabled_at) + ')' : '') + ' ',
        h('button', { type: 'button', class: 'secondary small', onclick: () => set(true) }, 'Re-enable', h('span', { class: 'sr' }, ' callback URL ' + n))));
    };
    box.addEventListener('change', () => set(box.checked));
    show();
    return h('div', { class: 'urlstate' },
      h('div', { class: 'switch' }, box, h('label', { for: box.id }, 'Sends webhooks', h('span', { class: 'sr' }, ' to callback URL ' + n))),
      notice);
  }

  // urlSettings is a URL's description and the webhook event types it
  // receives (all, or the ones ticked), applied with Save.
  function urlSettings(u, n) {
    const chosen = new Set((u && u.event_types) || []);
    const desc = h('input', { type: 'text', maxlength: '200', value: (u && u.description) || '', placeholder: 'e.g. billing sync', spellcheck: 'false' });
    const group = id('types');
    const all = h('input', { type: 'radio', name: group, value: 'all', checked: !chosen.size });
    const some = h('input', { type: 'radio', name: group, value: 'some', checked: !!chosen.size });
    const boxes = types.map((t) => h('input', { type: 'checkbox', value: t, checked: chosen.has(t) }));
    const grid = h('div', { class: 'typegrid', hidden: !chosen.size },
      boxes.map((b) => h('label', { class: 'check' }, b, h('code', {}, b.value))));
    const summary = h('span', { class: 'muted' });
    const value = () => ({
      description: desc.value.trim(),
      event_types: some.checked ? boxes.filter((b) => b.checked).map((b) => b.value) : [],
    });
    const sum = () => {
      const v = value();
      summary.textContent = (some.checked ? v.event_types.length + ' of ' + types.length + ' webhook events' : 'every webhook event') + (v.description ? ' · ' + v.description : '');
    };
    const pick = () => { grid.hidden = !some.checked; sum(); };
    all.addEventListener('change', pick);
    some.addEventListener('change', pick);
    grid.addEventListener('change', sum);
    desc.addEventListener('input', sum);
    sum();
    const el = h('details', { class: 'urlsettings' },
      h('summary', {}, 'Settings', h('span', { class: 'sr' }, ' of callback URL ' + n), ': ', summary),
      field('Description', desc, 'Tells your URLs apart; at most 200 bytes.'),
      h('fieldset', {},
        h('legend', {}, 'Webhook events it receives'),
        h('label', { class: 'check' }, all, 'All (also those added later)'),
        h('label', { class: 'check' }, some, 'Only these:'),
        grid));
    return {
      el,
      value: () => {
        const v = value();
        if (some.checked && !v.event_types.length) throw new Error('Tick at least one webhook event, or choose All.');
        return v;
      },
    };
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

  // testDialog is a row's Test event: by default every webhook event the
  // row's domain event triggers (its cascade), or one of them with a body
  // of one's own. The Request area shows the exact requests before
  // anything is sent; the Response area each answer.
  function testDialog(rule) {
    const urls = cfg.callback_urls || [];
    const emits = rule.emits || [];
    const CASCADE = '';
    const urlSel = h('select', { name: 'url' }, urls.map((u) => h('option', { value: u.url }, u.url + (u.description ? ' · ' + u.description : '') + (u.disabled ? ' (disabled)' : ''))));
    const whatSel = h('select', { name: 'what' },
      emits.length > 1 ? h('option', { value: CASCADE }, 'All ' + emits.length + ' webhook events it triggers') : null,
      emits.map((e) => h('option', { value: e.type }, e.type)));
    const data = h('textarea', { rows: 10, spellcheck: 'false' });
    const dataField = field('Body data (editable JSON object)', data, 'Replaces the sample data; the request above shows what will be sent.');
    const sampleNote = h('p', { class: 'muted' }, 'Each request carries sample data. To send data of your own, choose one webhook event.');
    const request = h('div', { class: 'exchange request', 'aria-live': 'polite' });
    const response = h('div', { class: 'exchange response', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Nothing sent yet.'));
    const send = h('button', { type: 'button', class: 'primary' }, 'Test event');
    const dialog = h('dialog', { class: 'wide', 'aria-labelledby': 'test-title' },
      h('h2', { id: 'test-title' }, 'Test event: ' + rule.name),
      urls.length ? null : h('p', { class: 'error', role: 'alert' }, 'Add a callback URL first: the test event is sent to one of them.'),
      h('div', { class: 'row wrap' }, field('Test URL', urlSel), field('Webhook events', whatSel)),
      h('h3', {}, 'Request'), request,
      dataField, sampleNote,
      h('div', { class: 'row' }, send, h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Close')),
      h('h3', {}, 'Response'), response);
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    let edited = false;
    let seq = 0; // the latest preview wins
    const cascade = () => whatSel.value === CASCADE;
    const args = () => ({ event_type: whatSel.value, url: urlSel.value, body: edited ? data.value : '' });
    const mode = () => { dataField.hidden = cascade(); sampleNote.hidden = !cascade(); };
    const preview = async () => {
      if (!urls.length) { clear(request, h('p', { class: 'muted' }, 'No request: this hub has no callback URL yet.')); return; }
      const my = ++seq;
      clear(request, h('p', { class: 'state' }, 'Building the request…'));
      try {
        if (cascade()) {
          const r = await api.post(base + '/test-domain-events:preview', { domain_event_type: rule.domain_subject, url: urlSel.value });
          if (my === seq) clear(request, requestList(r.requests || []));
          return;
        }
        const r = (await api.post(base + '/test-events:preview', args())).request;
        if (my !== seq) return;
        clear(request, exchangeRequest(r));
        if (!edited) data.value = JSON.stringify(JSON.parse(r.body).data, null, 2);
      } catch (e) {
        if (my === seq) clear(request, errorBox(e));
      }
    };
    urlSel.addEventListener('change', preview);
    whatSel.addEventListener('change', () => { edited = false; mode(); clear(response, h('p', { class: 'muted' }, 'Nothing sent yet.')); preview(); });
    let timer;
    data.addEventListener('input', () => { edited = true; clearTimeout(timer); timer = setTimeout(preview, 400); });
    send.disabled = !urls.length;
    send.addEventListener('click', async () => {
      send.disabled = true;
      seq++; // a preview still under way must not replace what is sent
      clear(response, h('p', { class: 'state' }, 'Sending…'));
      try {
        if (cascade()) {
          const r = await api.post(base + '/test-domain-events', { domain_event_type: rule.domain_subject, url: urlSel.value });
          const results = r.results || [];
          clear(request, requestList(results.map((x) => x.request || {})));
          clear(response, responseList(results, r.domain_event_id));
        } else {
          const r = await api.post(base + '/test-events', args());
          clear(request, exchangeRequest(r.request));
          clear(response, exchangeResponse(r.response));
        }
      } catch (e) {
        clear(response, errorBox(e));
      }
      send.disabled = false;
    });
    mode();
    preview();
  }
}

// requestList shows a cascade's requests, the first one open.
function requestList(reqs) {
  if (!reqs.length) return h('p', { class: 'muted' }, 'No request.');
  return h('div', { class: 'list' }, reqs.map((r, i) => h('details', { open: i === 0 },
    h('summary', {}, h('code', {}, webhookType(r.body)), h('span', { class: 'muted' }, ' · ' + (r.method || 'POST') + ' ' + r.url)),
    exchangeRequest(r))));
}

// responseList shows each answer of a cascade: a line per webhook event,
// the first one open.
function responseList(results, domainEventId) {
  const ok = results.filter((x) => is2xx((x.response || {}).status_code)).length;
  return h('div', { class: 'list' },
    h('p', {}, results.length + ' sent, ' + ok + ' answered 2xx. Logged as test deliveries of domain event ', h('code', {}, domainEventId), '.'),
    results.map((x, i) => {
      const code = (x.response || {}).status_code || 0;
      return h('details', { open: i === 0 },
        h('summary', {}, h('code', {}, webhookType((x.request || {}).body)), ' ',
          h('span', { class: 'badge ' + (is2xx(code) ? 'ok' : 'bad') }, code ? 'HTTP ' + code : 'no response'),
          h('span', { class: 'muted' }, ' in ' + ((x.response || {}).duration_ms || 0) + ' ms')),
        exchangeResponse(x.response || {}, false));
    }));
}

// webhookType is the type of a webhook body, read from the body itself.
function webhookType(body) {
  try { return JSON.parse(body).type || '?'; } catch { return '?'; }
}

function is2xx(code) { return code >= 200 && code < 300; }

// exchangeRequest shows a request: method, URL, headers, pretty body.
export function exchangeRequest(r) {
  return h('div', {},
    h('p', {}, h('code', {}, (r.method || 'POST') + ' ' + r.url)),
    headersTable(r.headers),
    h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Request body' }, pretty(r.body)));
}

// exchangeResponse shows a response: status and time (unless a summary
// above says them), error, headers, body.
export function exchangeResponse(r, withStatus = true) {
  const code = r.status_code || 0;
  return h('div', {},
    withStatus ? h('p', {}, h('span', { class: 'badge ' + (is2xx(code) ? 'ok' : 'bad') }, code ? 'HTTP ' + code : 'no response'),
      ' in ' + (r.duration_ms || 0) + ' ms') : null,
    r.error ? h('p', { class: 'error' }, r.error) : null,
    headersTable(r.headers),
    r.body ? h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Response body' }, pretty(r.body) + (r.body_truncated ? '\n… (truncated)' : '')) : h('p', { class: 'muted' }, 'Empty body.'));
}

function headersTable(headers) {
  const keys = Object.keys(headers || {}).sort();
  if (!keys.length) return null;
  return h('table', { class: 'headers' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, headers[k])))));
}

function sameSet(a, b) {
  return a.length === b.length && a.every((x) => b.includes(x));
}
