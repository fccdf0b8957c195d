// The server's life: an aborted stream frees its sequence and the server keeps serving; SIGTERM lets a running
// stream finish (drain) and the process exits 0.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';

import { cancelledCount, waitIdle } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

describe('lifecycle', () => {
  test('health, an aborted stream, and serving on afterwards', async () => {
    const server = await startServer(['--parallel', '2']);
    try {
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
      for (const kind of ['chat', 'completion']) {
        const cancelledBefore = await cancelledCount(server);
        // 3000 tokens take several seconds on the demo model: going idle sooner means the abort cancelled it.
        const stream = kind === 'chat'
          ? await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'Go on' }],
                                                   max_tokens: 3000, temperature: 0, ignore_eos: true, stream: true })
          : await client.completions.create({ model: 'demo', prompt: 'Go on', max_tokens: 3000, temperature: 0,
                                              ignore_eos: true, stream: true });
        let chunks = 0;
        for await (const chunk of stream) {  // ends quietly after abort()
          if (++chunks === 4) stream.controller.abort();
        }
        assert.ok(chunks >= 4 && chunks < 200, `${chunks} chunks after the abort`);
        await waitIdle(server, { timeoutMs: 2000 });
        assert.equal(await cancelledCount(server), cancelledBefore + 1, `the aborted ${kind} stream was not cancelled`);
      }
      const r = await client.completions.create({ model: 'demo', prompt: 'Still there?', max_tokens: 3,
                                                  temperature: 0, ignore_eos: true });
      assert.equal(r.usage.completion_tokens, 3);
      await waitIdle(server);
    } finally {
      await server.stop();
    }
  });

  test('SIGTERM drains a running stream and exits 0', async () => {
    const server = await startServer(['--parallel', '2']);
    const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const stream = await client.completions.create({ model: 'demo', prompt: [1, 2, 3], max_tokens: 48, temperature: 0,
                                                    ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.ok(!first.done);
    server.process.kill('SIGTERM');
    let usage = null;
    let finish = null;
    for (;;) {
      const { value, done } = await it.next();
      if (done) break;
      if (value.usage) usage = value.usage;
      for (const c of value.choices) if (c.finish_reason) finish = c.finish_reason;
    }
    assert.equal(finish, 'length', 'the running stream was cut by the drain');
    assert.equal(usage?.completion_tokens, 48);
    await server.stop();  // checks the exit status is 0
  });
});
