// 16 concurrent streaming clients with different prompt lengths, on 16 slots and then on fewer (some wait in the
// queue), some aborting midway: every finished output equals the same request's greedy output run alone, and the
// server ends idle (queue, running, KDA slots and MLA pages all 0).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';

import { cancelledCount, metrics, waitIdle } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const CLIENTS = 16;
const SLOTS = 6;
const MAX_TOKENS = 20;
// Prompt lengths around the prefill chunk (512 rows on the demo model) and the KDA chunk, one token to two chunks.
const LENGTHS = [1, 5, 17, 63, 64, 65, 130, 200, 255, 256, 300, 511, 512, 513, 700, 1030];
const ABORT_AFTER = new Map([[2, 3], [7, 1], [11, 5], [14, 2]]);  // client index -> chunks read before abort()

// Deterministic pseudo-random token ids in the demo vocabulary's ordinary range.
function promptIds(n, seed) {
  let x = seed * 2654435761 % 4294967296 || 1;
  const ids = [];
  for (let i = 0; i < n; ++i) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    ids.push(x % 3900);
  }
  return ids;
}

// Chat clients exercise the template and detokenizer path; completion clients send token ids.
function requestFor(i) {
  if (i % 4 === 3) {
    return { kind: 'chat', body: { model: 'demo', messages: [{ role: 'user', content: `Story ${i}: ` + 'the sea '.repeat(LENGTHS[i] / 3) }],
                                   max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true } };
  }
  return { kind: 'completion', body: { model: 'demo', prompt: promptIds(LENGTHS[i], i + 1), max_tokens: MAX_TOKENS,
                                       temperature: 0, ignore_eos: true } };
}

async function runStream(client, req, abortAfter) {
  const create = req.kind === 'chat' ? client.chat.completions : client.completions;
  const stream = await create.create({ ...req.body, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finishReason = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += req.kind === 'chat' ? (choice.delta.content ?? '') : choice.text;
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    if (++chunks === abortAfter) stream.controller.abort();
  }
  return { text, finishReason, usage };
}

// Runs every request at once on `server`; the non-aborted ones must equal `alone`. Returns nothing; asserts.
async function runTogether(server, requests, alone, slots) {
  const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
  const cancelledBefore = await cancelledCount(server);
  // Watch the queue while they run: with more clients than slots some must wait.
  let maxQueued = 0;
  let maxRunning = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const { samples } = await metrics(server);
      maxQueued = Math.max(maxQueued, samples.get('halo_queue_depth'));
      maxRunning = Math.max(maxRunning, samples.get('halo_running_sequences'));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const together = await Promise.all(requests.map((req, i) => runStream(client, req, ABORT_AFTER.get(i) ?? 0)));
  watching = false;
  await watcher;

  for (const [i, r] of together.entries()) {
    if (ABORT_AFTER.has(i)) continue;
    assert.equal(r.finishReason, 'length', `client ${i}`);
    assert.equal(r.usage.prompt_tokens, alone[i].usage.prompt_tokens, `client ${i}`);
    assert.equal(r.usage.completion_tokens, MAX_TOKENS, `client ${i}`);
    assert.equal(r.text, alone[i].text, `client ${i} (${requests[i].kind}, ${LENGTHS[i]} prompt tokens) on ${slots} ` +
                                        'slots differs from its output run alone');
  }
  assert.ok(maxRunning <= slots, `${maxRunning} sequences ran at once on ${slots} slots`);
  if (slots < requests.length) assert.ok(maxQueued > 0, 'no request was ever seen waiting in the queue');
  else assert.ok(maxRunning > 1, 'the requests never ran side by side');

  const idle = await waitIdle(server);
  assert.equal(idle.get('halo_kda_slots_total'), slots);
  // An abort may come after the stream's last token: then the request finished normally before it was noticed.
  const cancelled = (await cancelledCount(server)) - cancelledBefore;
  assert.ok(cancelled >= 1 && cancelled <= ABORT_AFTER.size, `${cancelled} requests were cancelled`);
}

describe('concurrent streams', () => {
  const requests = Array.from({ length: CLIENTS }, (_, i) => requestFor(i));
  let alone = null;

  test(`${CLIENTS} clients on ${CLIENTS} slots match their outputs run alone`, async () => {
    const server = await startServer(['--parallel', String(CLIENTS), '--context', '2048']);
    try {
      const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
      alone = [];
      for (const req of requests) alone.push(await runStream(client, req, 0));  // one at a time
      for (const [i, r] of alone.entries()) {
        assert.equal(r.finishReason, 'length', `client ${i} alone`);
        assert.equal(r.usage.completion_tokens, MAX_TOKENS, `client ${i} alone`);
      }
      await runTogether(server, requests, alone, CLIENTS);
    } finally {
      await server.stop();
    }
  });

  test(`${CLIENTS} clients on ${SLOTS} slots (some queue) match their outputs run alone`, async () => {
    assert.ok(alone, 'the outputs alone come from the previous test');
    const server = await startServer(['--parallel', String(SLOTS), '--context', '2048']);
    try {
      await runTogether(server, requests, alone, SLOTS);
    } finally {
      await server.stop();
    }
  });
});
