// Plain HTTP helpers for what the SDKs do not cover: /tokenize, /detokenize, /metrics, raw error bodies.
import assert from 'node:assert/strict';

export async function postJson(url, body, { headers = {} } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* left null: the caller checks */ }
  return { status: res.status, headers: res.headers, text, json };
}

// POST /tokenize (vLLM's shape): {prompt} or {messages, tools?, add_generation_prompt?} -> token ids.
export async function tokenize(server, body) {
  const r = await postJson(`${server.url}/tokenize`, { model: 'demo', ...body });
  assert.equal(r.status, 200, `POST /tokenize ${JSON.stringify(body).slice(0, 200)} -> ${r.status} ${r.text}`);
  assert.ok(Array.isArray(r.json.tokens), `POST /tokenize returned no tokens array: ${r.text}`);
  assert.equal(r.json.count, r.json.tokens.length, `/tokenize count differs from its tokens: ${r.text}`);
  return r.json.tokens;
}

export async function detokenize(server, tokens) {
  const r = await postJson(`${server.url}/detokenize`, { model: 'demo', tokens });
  assert.equal(r.status, 200, `POST /detokenize -> ${r.status} ${r.text}`);
  assert.equal(typeof r.json.prompt, 'string', `POST /detokenize returned no prompt string: ${r.text}`);
  return r.json.prompt;
}

// GET /metrics -> samples: Map of sample name (labels dropped, values of one name summed) -> number; labelled: Map
// of the sample as written (name{labels}) -> number.
export async function metrics(server) {
  const res = await fetch(`${server.url}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics -> ${res.status} ${text}`);
  const samples = new Map();
  const labelled = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    // name{label="value",...} value: label values are quoted and may hold braces and escaped quotes.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)$/.exec(line);
    assert.ok(m, `GET /metrics: a line that is not a Prometheus sample: ${JSON.stringify(line)}`);
    samples.set(m[1], (samples.get(m[1]) ?? 0) + Number(m[3]));
    labelled.set(m[1] + (m[2] ?? ''), Number(m[3]));
  }
  return { samples, labelled, text };
}

// Requests the engine finished as cancelled so far (a client that went away).
export async function cancelledCount(server) {
  return (await metrics(server)).labelled.get('halo_requests_finished_total{reason="cancelled"}') ?? 0;
}

// The gauges that must read 0 once every request has finished or been cancelled.
export const IDLE_GAUGES = ['halo_queue_depth', 'halo_running_sequences', 'halo_kda_slots_used', 'halo_mla_pages_used'];

// Polls /metrics until every gauge in IDLE_GAUGES is 0 (a cancelled request is removed at the engine's next step).
export async function waitIdle(server, { timeoutMs = 10000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { samples, text } = await metrics(server);
    for (const name of IDLE_GAUGES) assert.ok(samples.has(name), `GET /metrics has no ${name}:\n${text}`);
    const busy = IDLE_GAUGES.filter((name) => samples.get(name) !== 0);
    if (busy.length === 0) return samples;
    if (Date.now() > deadline) {
      assert.fail(`after ${timeoutMs} ms /metrics still shows ${busy.map((n) => `${n}=${samples.get(n)}`).join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
