// Errors reach the openai SDK as its typed exceptions with the right status and an OpenAI-style error body.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { metrics, postJson, waitIdle } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const CONTEXT = 256;  // the server's --context: prompts longer than this must be refused with 400

async function rejects(promise, ErrorClass, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    // OpenAI's error object: {message, type, param, code}; the SDK hands over its fields.
    assert.equal(typeof err.error?.message, 'string', `no error.message in ${JSON.stringify(err.error)}`);
    assert.ok(err.error.message.length > 0);
    assert.equal(typeof err.error.type, 'string');
    assert.ok('param' in err.error && 'code' in err.error, `error body lacks param or code: ${JSON.stringify(err.error)}`);
    return err;
  }
  assert.fail(`expected ${ErrorClass.name} (${status}), but the request succeeded`);
}

describe('openai errors', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(['--parallel', '1', '--queue', '1', '--context', String(CONTEXT)]);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  });
  after(async () => { await server?.stop(); });

  const chat = (extra) => client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra,
  });

  test('an unknown role is a BadRequestError', async () => {
    await rejects(chat({ messages: [{ role: 'wizard', content: 'hi' }] }), OpenAI.BadRequestError, 400);
  });

  test('a negative max_tokens is a BadRequestError naming max_tokens', async () => {
    const err = await rejects(chat({ max_tokens: -1 }), OpenAI.BadRequestError, 400);
    assert.equal(err.error.param, 'max_tokens');
    await rejects(client.completions.create({ model: 'demo', prompt: 'x', max_tokens: -5 }), OpenAI.BadRequestError, 400);
  });

  test('bad sampling values are BadRequestErrors', async () => {
    await rejects(chat({ temperature: -1 }), OpenAI.BadRequestError, 400);
    await rejects(chat({ top_p: 0 }), OpenAI.BadRequestError, 400);
    await rejects(chat({ n: 2 }), OpenAI.BadRequestError, 400);
  });

  test('a prompt longer than the context is a BadRequestError', async () => {
    const long = 'word '.repeat(CONTEXT * 2);
    await rejects(chat({ messages: [{ role: 'user', content: long }] }), OpenAI.BadRequestError, 400);
    const ids = Array.from({ length: CONTEXT + 10 }, (_, i) => i % 1000);
    await rejects(client.completions.create({ model: 'demo', prompt: ids, max_tokens: 1 }), OpenAI.BadRequestError, 400);
    // Exactly full is also refused: the context must hold the prompt and at least one new token.
    await rejects(client.completions.create({ model: 'demo', prompt: ids.slice(0, CONTEXT), max_tokens: 1 }),
                  OpenAI.BadRequestError, 400);
  });

  test('token ids outside the vocabulary are a BadRequestError', async () => {
    await rejects(client.completions.create({ model: 'demo', prompt: [1, 2, 10000000], max_tokens: 1 }),
                  OpenAI.BadRequestError, 400);
    await rejects(client.completions.create({ model: 'demo', prompt: [1, -2], max_tokens: 1 }),
                  OpenAI.BadRequestError, 400);
  });

  test('an unknown model is a NotFoundError', async () => {
    await rejects(chat({ model: 'gpt-17' }), OpenAI.NotFoundError, 404);
    await rejects(client.completions.create({ model: 'gpt-17', prompt: 'x', max_tokens: 1 }), OpenAI.NotFoundError, 404);
    await rejects(client.models.retrieve('gpt-17'), OpenAI.NotFoundError, 404);
  });

  test('a body that is not JSON, or not an object, is 400 with an OpenAI error object', async () => {
    for (const body of ['{"model": "demo", "messages": [', '[1, 2]', '"text"', '']) {
      const r = await postJson(`${server.url}/v1/chat/completions`, body);
      assert.equal(r.status, 400, `body ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      assert.equal(typeof r.json?.error?.message, 'string', r.text);
      assert.equal(r.headers.get('content-type')?.split(';')[0], 'application/json');
    }
  });

  test('a body over 64 MiB is 413, an APIError in the SDK', async () => {
    const err = await rejects(client.completions.create({ model: 'demo', prompt: 'a'.repeat(65 << 20), max_tokens: 1 }),
                              OpenAI.APIError, 413);
    assert.ok(!(err instanceof OpenAI.BadRequestError));
    // The server still answers afterwards.
    const r = await client.completions.create({ model: 'demo', prompt: [1], max_tokens: 1 });
    assert.equal(r.usage.completion_tokens, 1);
  });

  test('an unknown path is 404', async () => {
    const r = await postJson(`${server.url}/v1/nothing-here`, {});
    assert.equal(r.status, 404);
  });

  test('a full queue is 503 with Retry-After, surfaced as InternalServerError', async () => {
    // --parallel 1 --queue 1: one request runs, one waits, the next is refused. The running request must outlast
    // the checks: a server of its own with a context long enough for thousands of tokens (at 256 it would be done
    // in a fraction of a second on a fast CPU), aborted at the end.
    const server = await startServer(['--parallel', '1', '--queue', '1', '--context', '16384']);
    try {
      const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
      const running = await client.completions.create({ model: 'demo', prompt: [1, 2, 3], max_tokens: 16000,
                                                        temperature: 0, ignore_eos: true, stream: true });
      const it = running[Symbol.asyncIterator]();
      await it.next();  // its first token: it is running
      const waiting = client.completions.create({ model: 'demo', prompt: [4, 5, 6], max_tokens: 2, temperature: 0,
                                                 ignore_eos: true });
      const deadline = Date.now() + 10000;
      while ((await metrics(server)).samples.get('halo_queue_depth') !== 1) {
        assert.ok(Date.now() < deadline, 'the second request never showed up in halo_queue_depth');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const raw = await postJson(`${server.url}/v1/completions`, { model: 'demo', prompt: [7], max_tokens: 1 });
      assert.equal(raw.status, 503, raw.text);
      assert.match(raw.headers.get('retry-after') ?? '', /^\d+$/, 'a 503 without Retry-After');
      assert.equal(typeof raw.json?.error?.message, 'string', raw.text);
      await rejects(client.completions.create({ model: 'demo', prompt: [7], max_tokens: 1 }),
                    OpenAI.InternalServerError, 503);

      running.controller.abort();
      const done = await waiting;
      assert.equal(done.usage.completion_tokens, 2);
      await waitIdle(server);
    } finally {
      await server.stop();
    }
  });
});
