// HTTP plumbing of the OpenAI-compatible runner: POST JSON with a per-attempt timeout, retries with
// exponential backoff on the failures a busy or restarting server produces (429, 5xx, refused or
// reset connections, timeouts), `Retry-After` honoured, and an ordered map with a concurrency limit.

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff; doubles each retry (full jitter), capped at maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Abort one attempt after this long. */
  timeoutMs: number;
}

/** A request that failed for good: after retries, or with a status that retrying cannot fix. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seconds (or an HTTP date) from Retry-After, in ms; null when absent or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** The server's own error message when it sends the OpenAI `{"error": {"message"}}` shape. */
function serverMessage(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    if (typeof json.error === 'string') return json.error;
    if (typeof json.error?.message === 'string') return json.error.message;
    if (typeof json.message === 'string') return json.message;
    if (typeof json.detail === 'string') return json.detail;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, 200);
}

/** POSTs `body` as JSON and returns the parsed JSON response, retrying transient failures. */
export async function postJson(url: string, body: unknown, headers: Record<string, string>, policy: RetryPolicy): Promise<unknown> {
  let lastError = '';
  let lastStatus: number | null = null;
  for (let attempt = 0; attempt <= policy.maxRetries; attempt++) {
    let wait = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** attempt) * Math.random();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(policy.timeoutMs),
      });
      const text = await response.text();
      if (response.ok) {
        try {
          return JSON.parse(text);
        } catch {
          throw new RemoteError(`${url}: the server answered ${response.status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`, response.status, attempt + 1);
        }
      }
      lastStatus = response.status;
      lastError = `HTTP ${response.status}: ${serverMessage(text)}`;
      if (!retryable(response.status)) throw new RemoteError(`${url}: ${lastError}`, response.status, attempt + 1);
      wait = retryAfterMs(response.headers.get('retry-after')) ?? wait;
    } catch (error) {
      if (error instanceof RemoteError) throw error;
      const e = error as Error & { cause?: { code?: string } };
      lastStatus = null;
      lastError = e.name === 'TimeoutError' ? `no response within ${policy.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
    }
    if (attempt < policy.maxRetries) await sleep(wait);
  }
  const attempts = policy.maxRetries + 1;
  throw new RemoteError(`${url}: ${lastError} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`, lastStatus, attempts);
}

/**
 * Runs `fn` on every item with at most `limit` in flight and yields the results in input order
 * (the Runner contract streams results in request order).
 */
export async function* mapOrdered<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): AsyncGenerator<R> {
  const results = new Array<Promise<R>>(items.length);
  let next = 0;
  let running = 0;
  const waiters: (() => void)[] = [];
  const launch = (i: number) => {
    running++;
    results[i] = fn(items[i]!, i).finally(() => {
      running--;
      waiters.shift()?.();
    });
    // Failures surface when the result is awaited in order; mark them handled meanwhile.
    results[i]!.catch(() => {});
  };
  const fill = () => {
    while (next < items.length && running < limit) launch(next++);
  };
  for (let i = 0; i < items.length; i++) {
    fill();
    while (results[i] === undefined) {
      await new Promise<void>((resolve) => waiters.push(resolve));
      fill();
    }
    yield await results[i]!;
  }
}
