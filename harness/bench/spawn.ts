// Runs a bench script in a child process (so each measured model has a process, and a peak RSS, of its
// own) and returns the JSON the child prints on the stdout line that starts with `prefix`.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export async function runBenchChild(
  script: string,
  args: readonly string[],
  options: { prefix: string; what: string; nodeFlags?: readonly string[]; env?: NodeJS.ProcessEnv },
): Promise<unknown> {
  // tsx resolved from this file, not from the working directory, so the bench runs from anywhere.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', tsx, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: options.env ?? process.env });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const line = stdout.split('\n').find((l) => l.startsWith(options.prefix));
  if (code !== 0 || line === undefined) throw new Error(`${options.what} exited with code ${code} and no result`);
  return JSON.parse(line.slice(options.prefix.length)) as unknown;
}
