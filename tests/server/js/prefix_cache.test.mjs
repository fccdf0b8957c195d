// Prefix reuse as the official openai client sees it: a conversation re-sent with one more turn reports the re-sent
// part in usage.prompt_tokens_details.cached_tokens, and its greedy reply is the one the CLI gives for the same
// prompt run cold.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { cliGenerate } from './lib/cli.mjs';
import { postJson, tokenize } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const MAX_TOKENS = 10;
const TURN1 = [{ role: 'user', content: 'Describe the sea at night in a few words.' }];

describe('prefix cache through the openai client', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(['--parallel', '2', '--prefix-stride', '64']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  });
  after(async () => { await server?.stop(); });

  const ask = (messages, extra = {}) => client.chat.completions.create({
    model: 'demo', messages, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, ...extra,
  });

  test('a repeated and a continued conversation report their cached prompt tokens', async () => {
    const first = await ask(TURN1);
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0, 'nothing was cached before the first request');

    // The same conversation again: the whole prompt comes from the cache, the reply is the same.
    const again = await ask(TURN1);
    assert.equal(again.usage.prompt_tokens_details.cached_tokens, again.usage.prompt_tokens);
    assert.equal(again.choices[0].message.content, first.choices[0].message.content);

    // The next turn re-sends the first with its reply: at least the first turn's prompt is reused.
    const turn2 = [...TURN1, { role: 'assistant', content: first.choices[0].message.content },
                   { role: 'user', content: 'Now describe it at dawn.' }];
    const second = await ask(turn2);
    const ids = await tokenize(server, { messages: turn2 });
    assert.equal(second.usage.prompt_tokens, ids.length);
    const cached = second.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= first.usage.prompt_tokens, `cached_tokens ${cached} < turn 1's ${first.usage.prompt_tokens}`);
    assert.ok(cached < second.usage.prompt_tokens, 'the new user message must have been read');
    const cold = await cliGenerate(['--prompt-ids', ids.join(','), '--ignore-eos'], MAX_TOKENS);
    const coldText = await postJson(`${server.url}/detokenize`, { tokens: cold.ids, skip_special: true });
    assert.equal(second.choices[0].message.content, coldText.json.prompt);

    // Streamed with include_usage, the usage chunk carries the same detail.
    const stream = await ask(turn2, { stream: true, stream_options: { include_usage: true } });
    let usage = null;
    let text = '';
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) text += choice.delta.content ?? '';
    }
    assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens);
    assert.equal(text, second.choices[0].message.content);
  });
});
