// /v1/completions through the openai SDK: a string prompt and a token-id prompt, stream and non-stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { cliGenerate } from './lib/cli.mjs';
import { detokenize, tokenize } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const PROMPT = 'Once upon a time, in a village by the sea,';
const MAX_TOKENS = 10;

async function collectCompletion(stream) {
  let text = '';
  let finishReason = null;
  let usage = null;
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      assert.equal(choice.index, 0);
      assert.equal(finishReason, null, 'a chunk came after the one with finish_reason');
      text += choice.text;
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  return { text, finishReason, usage, chunks };
}

describe('openai completions', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(['--parallel', '2']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  });
  after(async () => { await server?.stop(); });

  test('string prompt: non-stream and stream agree; usage is exact', async () => {
    const body = { model: 'demo', prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true };
    const r = await client.completions.create(body);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, 'demo');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(typeof r.choices[0].text, 'string');
    const promptIds = await tokenize(server, { prompt: PROMPT });
    assert.equal(r.usage.prompt_tokens, promptIds.length);
    assert.equal(r.usage.completion_tokens, MAX_TOKENS);
    assert.equal(r.usage.total_tokens, promptIds.length + MAX_TOKENS);

    const s = await collectCompletion(await client.completions.create({
      ...body, stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(s.text, r.choices[0].text);
    assert.equal(s.finishReason, 'length');
    // The same prompt again: all of it comes from the prefix cache, which usage says.
    const { prompt_tokens_details: cachedDetail, ...streamed } = s.usage;
    const { prompt_tokens_details: coldDetail, ...whole } = r.usage;
    assert.deepEqual(streamed, whole);
    assert.deepEqual(coldDetail, { cached_tokens: 0 });
    assert.deepEqual(cachedDetail, { cached_tokens: promptIds.length });
    assert.deepEqual(s.chunks[s.chunks.length - 1].choices, []);

    // The CLI run alone on the same text gives the same greedy continuation.
    const ref = await cliGenerate(['--prompt', PROMPT, '--ignore-eos'], MAX_TOKENS);
    assert.equal(ref.prompt_tokens, promptIds.length);
    assert.equal(r.choices[0].text, ref.text);
  });

  test('token-id prompt: the same continuation as the CLI with --prompt-ids', async () => {
    const ids = [];
    for (let i = 0; i < 40; ++i) ids.push((i * 97 + 13) % 3000);
    const r = await client.completions.create({
      model: 'demo', prompt: ids, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true,
    });
    assert.equal(r.usage.prompt_tokens, ids.length);
    assert.equal(r.usage.completion_tokens, MAX_TOKENS);
    assert.equal(r.choices[0].finish_reason, 'length');
    const ref = await cliGenerate(['--prompt-ids', ids.join(',')], MAX_TOKENS);
    assert.equal(r.choices[0].text, await detokenize(server, ref.ids));

    const s = await collectCompletion(await client.completions.create({
      model: 'demo', prompt: ids, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, stream: true,
    }));
    assert.equal(s.text, r.choices[0].text);
    assert.equal(s.usage, null);
  });

  test('a prompt of token ids and its text give the same continuation', async () => {
    const ids = await tokenize(server, { prompt: PROMPT });
    const a = await client.completions.create({ model: 'demo', prompt: ids, max_tokens: 6, temperature: 0,
                                                ignore_eos: true });
    const b = await client.completions.create({ model: 'demo', prompt: PROMPT, max_tokens: 6, temperature: 0,
                                                ignore_eos: true });
    assert.equal(a.choices[0].text, b.choices[0].text);
  });

  test('a stop string ends the text before it', async () => {
    const body = { model: 'demo', prompt: PROMPT, max_tokens: 24, temperature: 0, ignore_eos: true };
    const full = (await client.completions.create(body)).choices[0].text;
    const start = Math.floor(full.length / 2);
    const stop = full.slice(start, start + 3);
    assert.match(stop, /\S/, `the greedy text has no usable middle: ${JSON.stringify(full)}`);
    const r = await client.completions.create({ ...body, stop: [stop, 'never-generated-stop'] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
  });

  test('max_tokens 1 and a one-token prompt', async () => {
    const r = await client.completions.create({ model: 'demo', prompt: [42], max_tokens: 1, temperature: 0,
                                                ignore_eos: true });
    assert.equal(r.usage.prompt_tokens, 1);
    assert.equal(r.usage.completion_tokens, 1);
    assert.equal(r.choices[0].finish_reason, 'length');
  });
});
