// /v1/chat/completions through the official openai SDK: non-stream and stream, usage, stop strings, seeds, tools.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { cliGenerate } from './lib/cli.mjs';
import { detokenize, tokenize } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const MESSAGES = [{ role: 'user', content: 'Write a short story about a lighthouse keeper.' }];
const MAX_TOKENS = 12;

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

// Reads a chat stream to its end: the text (deltas concatenated), finish_reason, usage and the chunks.
async function collectChat(stream) {
  let text = '';
  let finishReason = null;
  let usage = null;
  let roleSeen = false;
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      assert.equal(choice.index, 0);
      assert.equal(finishReason, null, 'a chunk came after the one with finish_reason');
      if (choice.delta.role) { assert.equal(choice.delta.role, 'assistant'); roleSeen = true; }
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  return { text, finishReason, usage, roleSeen, chunks };
}

describe('openai chat completions', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(['--parallel', '2']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  });
  after(async () => { await server?.stop(); });

  test('models lists the served model', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    assert.deepEqual(ids, ['demo']);
    const one = await client.models.retrieve('demo');
    assert.equal(one.id, 'demo');
  });

  test('non-stream: the greedy reply, finish_reason length and exact usage', async () => {
    const r = await client.chat.completions.create({
      model: 'demo', messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true,
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /\S/);
    assert.equal(r.model, 'demo');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.equal(c.finish_reason, 'length');
    const promptIds = await tokenize(server, { messages: MESSAGES });
    assert.deepEqual(r.usage, {
      prompt_tokens: promptIds.length, completion_tokens: MAX_TOKENS, total_tokens: promptIds.length + MAX_TOKENS,
      ...(r.usage.prompt_tokens_details !== undefined && { prompt_tokens_details: r.usage.prompt_tokens_details }),
      ...(r.usage.completion_tokens_details !== undefined && { completion_tokens_details: r.usage.completion_tokens_details }),
    });
    // The same request run alone by the engine's CLI (K2 template, default system prompt, greedy).
    const ref = await cliGenerate(['--chat', MESSAGES[0].content, '--ignore-eos'], MAX_TOKENS);
    assert.equal(ref.prompt_tokens, promptIds.length, 'the server and the CLI render the chat differently');
    assert.equal(c.message.content, ref.content);
  });

  test('stream: deltas concatenate to the non-stream text; usage chunk last', async () => {
    const body = { model: 'demo', messages: MESSAGES, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true };
    const whole = await client.chat.completions.create(body);
    const s = await collectChat(await client.chat.completions.create({
      ...body, stream: true, stream_options: { include_usage: true },
    }));
    assert.ok(s.roleSeen, 'no chunk carried delta.role = assistant');
    assert.equal(s.text, whole.choices[0].message.content);
    assert.equal(s.finishReason, 'length');
    assert.ok(s.usage, 'stream_options.include_usage gave no usage chunk');
    assert.equal(s.usage.completion_tokens, MAX_TOKENS);
    assert.equal(s.usage.prompt_tokens, whole.usage.prompt_tokens);
    const last = s.chunks[s.chunks.length - 1];
    assert.deepEqual(last.choices, [], 'the usage chunk must have an empty choices array');
    assert.ok(last.usage);
    for (const chunk of s.chunks.slice(0, -1)) assert.ok(chunk.usage == null, 'usage only on the last chunk');
    assert.equal(new Set(s.chunks.map((c) => c.id)).size, 1, 'every chunk of one stream has the same id');
  });

  test('stream without include_usage sends no usage', async () => {
    const s = await collectChat(await client.chat.completions.create({
      model: 'demo', messages: MESSAGES, max_tokens: 4, temperature: 0, ignore_eos: true, stream: true,
    }));
    assert.equal(s.usage, null);
    assert.equal(s.finishReason, 'length');
  });

  test('max_completion_tokens limits like max_tokens', async () => {
    const r = await client.chat.completions.create({
      model: 'demo', messages: MESSAGES, max_completion_tokens: 5, temperature: 0, ignore_eos: true,
    });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 5);
  });

  test('a stop string ends the reply before it, with finish_reason stop', async () => {
    const body = { model: 'demo', messages: MESSAGES, max_tokens: 24, temperature: 0, ignore_eos: true };
    const full = (await client.chat.completions.create(body)).choices[0].message.content;
    // A stop string taken from the middle of the greedy reply: the reply must end right before its first occurrence.
    const start = Math.floor(full.length / 2);
    const stop = full.slice(start, start + 3);
    assert.match(stop, /\S/, `the greedy reply has no usable middle: ${JSON.stringify(full)}`);
    const cut = full.indexOf(stop);
    for (const stream of [false, true]) {
      let text;
      let finish;
      if (stream) {
        const s = await collectChat(await client.chat.completions.create({ ...body, stop: [stop], stream: true }));
        text = s.text;
        finish = s.finishReason;
      } else {
        const r = await client.chat.completions.create({ ...body, stop });
        text = r.choices[0].message.content;
        finish = r.choices[0].finish_reason;
        assert.ok(r.usage.completion_tokens < 24);
      }
      assert.equal(finish, 'stop', `stream=${stream}`);
      assert.equal(text, full.slice(0, cut), `stream=${stream}, stop ${JSON.stringify(stop)}`);
    }
  });

  test('the same seed gives the same sample at temperature 1', async () => {
    const body = { model: 'demo', messages: MESSAGES, max_tokens: 16, temperature: 1, top_p: 0.95, seed: 1234,
                   ignore_eos: true };
    const a = await client.chat.completions.create(body);
    const b = await client.chat.completions.create(body);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const c = await client.chat.completions.create({ ...body, seed: 99 });
    assert.equal(c.usage.completion_tokens, 16);
  });

  test('a system message and a multi-turn history are rendered like /tokenize renders them', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: [{ type: 'text', text: 'Tell me ' }, { type: 'text', text: 'a joke.' }] },
    ];
    const r = await client.chat.completions.create({ model: 'demo', messages, max_tokens: 3, temperature: 0,
                                                     ignore_eos: true });
    assert.equal(r.usage.prompt_tokens, (await tokenize(server, { messages })).length);
  });

  test('tools: a request declaring tools is accepted and the reply is well formed', async () => {
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const r = await client.chat.completions.create({
      model: 'demo', messages, tools: [WEATHER_TOOL], tool_choice: 'auto', max_tokens: 8, temperature: 0,
    });
    const c = r.choices[0];
    assert.ok(['stop', 'length', 'tool_calls'].includes(c.finish_reason), c.finish_reason);
    assert.equal(c.message.role, 'assistant');
    for (const call of c.message.tool_calls ?? []) {
      assert.equal(call.type, 'function');
      assert.equal(typeof call.function.name, 'string');
      JSON.parse(call.function.arguments);
    }
    if (c.finish_reason === 'tool_calls') assert.ok(c.message.tool_calls?.length > 0);
    // The tools are part of the prompt.
    const plain = await tokenize(server, { messages });
    assert.ok(r.usage.prompt_tokens > plain.length, 'declaring a tool did not lengthen the prompt');
    assert.equal(r.usage.prompt_tokens, (await tokenize(server, { messages, tools: [WEATHER_TOOL] })).length);
  });

  test('tools: the assistant tool_calls message and a tool result continue the conversation', async () => {
    const messages = [
      { role: 'user', content: 'What is the weather in Paris?' },
      {
        role: 'assistant', content: null,
        tool_calls: [{ id: 'functions.get_weather:0', type: 'function',
                       function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'functions.get_weather:0', content: '{"temperature_c": 21, "sky": "clear"}' },
    ];
    for (const stream of [false, true]) {
      const body = { model: 'demo', messages, tools: [WEATHER_TOOL], max_tokens: 8, temperature: 0 };
      if (!stream) {
        const r = await client.chat.completions.create(body);
        assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
        assert.equal(r.usage.prompt_tokens, (await tokenize(server, { messages, tools: [WEATHER_TOOL] })).length);
        const withoutResult = await tokenize(server, { messages: messages.slice(0, 1), tools: [WEATHER_TOOL] });
        assert.ok(r.usage.prompt_tokens > withoutResult.length + 10, 'the call and its result are not in the prompt');
      } else {
        const s = await collectChat(await client.chat.completions.create({ ...body, stream: true }));
        assert.ok(['stop', 'length', 'tool_calls'].includes(s.finishReason));
      }
    }
  });

  test('/tokenize and /detokenize round-trip text', async () => {
    const text = 'Memory bandwidth, not FLOPs, bounds decode. ünïcödé ✓';
    const ids = await tokenize(server, { prompt: text });
    assert.ok(ids.length > 5);
    assert.equal(await detokenize(server, ids), text);
  });
});
