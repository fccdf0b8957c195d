// /v1/messages through the official @anthropic-ai/sdk: non-stream, stream events, tool definitions and a
// tool_use / tool_result history, errors as the SDK's typed exceptions.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { cancelledCount, tokenize, waitIdle } from './lib/http.mjs';
import { startServer } from './lib/server.mjs';

const MESSAGES = [{ role: 'user', content: 'Write a short story about a lighthouse keeper.' }];
const MAX_TOKENS = 12;

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

async function rejects(promise, ErrorClass, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    // Anthropic's error body: {"type": "error", "error": {"type": "...", "message": "..."}}.
    assert.equal(err.error?.type, 'error', `error body: ${JSON.stringify(err.error)}`);
    assert.equal(typeof err.error.error?.type, 'string');
    assert.equal(typeof err.error.error?.message, 'string');
    return err;
  }
  assert.fail(`expected ${ErrorClass.name} (${status}), but the request succeeded`);
}

function textOf(message) {
  return message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

describe('anthropic messages', () => {
  let server;
  let client;
  let openai;
  before(async () => {
    server = await startServer(['--parallel', '2', '--context', '1024']);
    client = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    openai = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  });
  after(async () => { await server?.stop(); });

  test('non-stream: a text reply, a stop reason and exact usage', async () => {
    const m = await client.messages.create({
      model: 'demo', max_tokens: MAX_TOKENS, messages: MESSAGES, temperature: 0, ignore_eos: true,
    });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'demo');
    assert.match(m.id, /\S/);
    assert.ok(m.content.length >= 1);
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.stop_reason, 'max_tokens');
    assert.equal(m.stop_sequence, null);
    assert.equal(m.usage.output_tokens, MAX_TOKENS);
    assert.equal(m.usage.input_tokens, (await tokenize(server, { messages: MESSAGES })).length);
    // The same conversation through the OpenAI endpoint gives the same greedy text.
    const o = await openai.chat.completions.create({ model: 'demo', messages: MESSAGES, max_tokens: MAX_TOKENS,
                                                     temperature: 0, ignore_eos: true });
    assert.equal(textOf(m), o.choices[0].message.content);
  });

  test('a top-level system prompt is the system message', async () => {
    const m = await client.messages.create({
      model: 'demo', max_tokens: 2, system: 'You are terse.', messages: MESSAGES, temperature: 0,
    });
    const ids = await tokenize(server, { messages: [{ role: 'system', content: 'You are terse.' }, ...MESSAGES] });
    assert.equal(m.usage.input_tokens, ids.length);
  });

  test('stream: the text events concatenate to the non-stream text; events come in order', async () => {
    const body = { model: 'demo', max_tokens: MAX_TOKENS, messages: MESSAGES, temperature: 0, ignore_eos: true };
    const whole = await client.messages.create(body);
    // The first test sent this conversation already: the prefix cache holds all of it, which Anthropic's usage counts
    // as cache_read_input_tokens, apart from input_tokens (the prompt is their sum with cache_creation_input_tokens).
    const promptTokens = (await tokenize(server, { messages: MESSAGES })).length;
    assert.equal(whole.usage.input_tokens, 0);
    assert.equal(whole.usage.cache_creation_input_tokens, 0);
    assert.equal(whole.usage.cache_read_input_tokens, promptTokens);

    // The SDK's stream helper.
    const stream = client.messages.stream(body);
    let text = '';
    stream.on('text', (delta) => { text += delta; });
    const final = await stream.finalMessage();
    assert.equal(text, textOf(whole));
    assert.equal(textOf(final), textOf(whole));
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, MAX_TOKENS);
    assert.equal(final.usage.input_tokens, 0);
    assert.equal(final.usage.cache_read_input_tokens, promptTokens);

    // The raw events: message_start, then per block start / delta* / stop, then message_delta and message_stop.
    const raw = await client.messages.create({ ...body, stream: true });
    const types = [];
    let deltaText = '';
    let stopReason = null;
    for await (const ev of raw) {
      types.push(ev.type);
      if (ev.type === 'message_start') {
        assert.equal(ev.message.role, 'assistant');
        assert.deepEqual(ev.message.content, []);
        // Before the engine has looked the prompt up, all of it counts as input; message_delta gives the split.
        assert.equal(ev.message.usage.input_tokens, promptTokens);
        assert.equal(ev.message.usage.cache_read_input_tokens, 0);
      }
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') deltaText += ev.delta.text;
      if (ev.type === 'message_delta') {
        stopReason = ev.delta.stop_reason;
        assert.equal(ev.usage.output_tokens, MAX_TOKENS);
        assert.equal(ev.usage.input_tokens, 0);
        assert.equal(ev.usage.cache_read_input_tokens, promptTokens);
      }
    }
    assert.equal(types[0], 'message_start');
    assert.equal(types[types.length - 1], 'message_stop');
    assert.equal(types[types.length - 2], 'message_delta');
    assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
    const body_ = types.filter((t) => t !== 'ping').slice(1, -2);
    let open = false;
    for (const t of body_) {
      if (t === 'content_block_start') { assert.ok(!open, 'a block started inside a block'); open = true; }
      else if (t === 'content_block_stop') { assert.ok(open, 'a block stopped without a start'); open = false; }
      else assert.ok(open && t === 'content_block_delta', `event ${t} outside a content block`);
    }
    assert.equal(deltaText, textOf(whole));
    assert.equal(stopReason, 'max_tokens');
  });

  test('a stop sequence ends the reply with stop_reason stop_sequence', async () => {
    const body = { model: 'demo', max_tokens: 24, messages: MESSAGES, temperature: 0, ignore_eos: true };
    const full = textOf(await client.messages.create(body));
    const start = Math.floor(full.length / 2);
    const stop = full.slice(start, start + 3);
    assert.match(stop, /\S/, `the greedy reply has no usable middle: ${JSON.stringify(full)}`);
    const m = await client.messages.create({ ...body, stop_sequences: [stop] });
    assert.equal(m.stop_reason, 'stop_sequence');
    assert.equal(m.stop_sequence, stop);
    assert.equal(textOf(m), full.slice(0, full.indexOf(stop)));
  });

  test('tools: definitions with a tool_use / tool_result history are accepted', async () => {
    const messages = [
      { role: 'user', content: 'What is the weather in Paris?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me look that up.' },
          { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '{"temperature_c": 21}' }],
      },
    ];
    const m = await client.messages.create({
      model: 'demo', max_tokens: 8, tools: [WEATHER_TOOL], messages, temperature: 0,
    });
    assert.ok(['end_turn', 'max_tokens', 'tool_use', 'stop_sequence'].includes(m.stop_reason), m.stop_reason);
    for (const block of m.content) {
      assert.ok(['text', 'tool_use'].includes(block.type), block.type);
      if (block.type === 'tool_use') {
        assert.equal(typeof block.id, 'string');
        assert.equal(typeof block.name, 'string');
        assert.equal(typeof block.input, 'object');
      }
    }
    if (m.stop_reason === 'tool_use') assert.ok(m.content.some((b) => b.type === 'tool_use'));
    const first = await client.messages.create({
      model: 'demo', max_tokens: 1, tools: [WEATHER_TOOL], messages: messages.slice(0, 1), temperature: 0,
    });
    assert.ok(m.usage.input_tokens > first.usage.input_tokens + 10, 'the tool call and its result are not in the prompt');

    const stream = client.messages.stream({ model: 'demo', max_tokens: 8, tools: [WEATHER_TOOL], messages });
    const final = await stream.finalMessage();
    assert.ok(final.usage.output_tokens <= 8);
  });

  test('errors are the SDK exceptions with Anthropic error bodies', async () => {
    const create = (extra) => client.messages.create({ model: 'demo', max_tokens: 4, messages: MESSAGES, ...extra });
    const bad = await rejects(create({ messages: [{ role: 'wizard', content: 'hi' }] }), Anthropic.BadRequestError, 400);
    assert.equal(bad.error.error.type, 'invalid_request_error');
    await rejects(create({ max_tokens: -1 }), Anthropic.BadRequestError, 400);
    await rejects(create({ messages: [] }), Anthropic.BadRequestError, 400);
    await rejects(create({ messages: [{ role: 'user', content: 'word '.repeat(3000) }] }), Anthropic.BadRequestError, 400);
    const missing = await rejects(create({ model: 'claude-nope' }), Anthropic.NotFoundError, 404);
    assert.equal(missing.error.error.type, 'not_found_error');
  });

  test('an aborted stream frees its sequence', async () => {
    const cancelledBefore = await cancelledCount(server);
    const stream = await client.messages.create({ model: 'demo', max_tokens: 500, messages: MESSAGES, temperature: 0,
                                                 ignore_eos: true, stream: true });
    let deltas = 0;
    // The SDK ends the iteration quietly after controller.abort().
    for await (const ev of stream) {
      if (ev.type === 'content_block_delta' && ++deltas === 3) stream.controller.abort();
    }
    assert.ok(deltas >= 3 && deltas < 100, `${deltas} text deltas after the abort`);
    await waitIdle(server);
    assert.equal(await cancelledCount(server), cancelledBefore + 1, 'the aborted stream was not cancelled');
  });
});
