// The engine's own CLI as the reference for greedy output: `engine --json` on the same model, one request alone.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { demoModelDir, enginePath } from './server.mjs';

const run = promisify(execFile);

// args: e.g. ['--chat', 'Hello', '--ignore-eos'] or ['--prompt-ids', '1,2,3']. Returns {ids, text?, prompt_tokens}.
export async function cliGenerate(args, maxTokens) {
  const argv = ['--model', demoModelDir(), '--quiet', '--json', '--temperature', '0', '--max-tokens', String(maxTokens),
                ...args];
  const { stdout } = await run(enginePath(), argv, { maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}
