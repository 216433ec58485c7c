// The HTTP/JSON API of hubhooks (/v1/), called with the signed-in token in
// the Authorization header: never in a URL, never logged.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class API {
  constructor(token) {
    this.token = token;
  }

  // headers has no Authorization when the token is empty: a server without
  // an admin token serves its own machine's callers without one.
  headers() {
    const h = { 'Content-Type': 'application/json' };
    if (this.token) h.Authorization = 'Bearer ' + this.token;
    return h;
  }

  async call(method, path, body) {
    let resp;
    try {
      resp = await fetch('/v1' + path, {
        method,
        headers: this.headers(),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new APIError(0, 'The server cannot be reached: ' + e.message);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    if (!resp.ok) {
      const msg = (data && data.message) || resp.statusText || 'request failed';
      throw new APIError(resp.status, msg);
    }
    return data;
  }

  get(path) { return this.call('GET', path); }
  post(path, body) { return this.call('POST', path, body || {}); }
  put(path, body) { return this.call('PUT', path, body || {}); }
  patch(path, body) { return this.call('PATCH', path, body || {}); }
  del(path) { return this.call('DELETE', path); }

  // tail follows a streaming endpoint of newline-delimited JSON messages
  // ({"result": ...} or {"error": ...}). onLive is called when the first
  // message arrives, onResult with each result, onEnd with an error (or
  // null when stopped). It returns a function that stops it.
  tail(path, { onLive, onResult, onEnd }) {
    const ctl = new AbortController();
    let stopped = false;
    (async () => {
      try {
        const resp = await fetch('/v1' + path, { headers: this.headers(), signal: ctl.signal, cache: 'no-store' });
        if (!resp.ok) {
          let msg = resp.statusText;
          try { const d = await resp.json(); msg = (d.error || d).message || msg; } catch { /* keep statusText */ }
          throw new APIError(resp.status, msg);
        }
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        let first = true;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line);
            if (msg.error) throw new APIError(0, msg.error.message);
            if (first) { first = false; onLive(); }
            onResult(msg.result);
          }
        }
        throw new APIError(0, 'the live feed ended');
      } catch (e) {
        if (!stopped) onEnd(e);
      }
    })();
    return () => { stopped = true; ctl.abort(); };
  }
}

// q builds a query string from the non-empty fields of o.
export function q(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) {
    if (v !== '' && v !== undefined && v !== null) p.set(k, v);
  }
  const s = p.toString();
  return s ? '?' + s : '';
}
