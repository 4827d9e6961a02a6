// Progress on stderr: cli-progress bars (overall cells + documents of the current cell, with ETA and
// the runner's tokens/s) when stderr is a terminal, one plain line per cell event otherwise (CI logs,
// pipes, tests), the cell's tokens/s on its closing line.
import cliProgress from 'cli-progress';

export interface Progress {
  cellStart(label: string, index: number, total: number): void;
  /** `tokens`: tokens the cell's runner has processed so far (prefill + decode). */
  cellDocs(done: number, total: number, tokens?: number): void;
  cellEnd(label: string, status: string): void;
  stop(): void;
}

/** Tokens per second since `since` (performance.now() ms), as a short string; '' before any token. */
function rate(tokens: number, since: number): string {
  const seconds = (performance.now() - since) / 1000;
  return tokens > 0 && seconds > 0 ? `${(tokens / seconds).toFixed(1)} tok/s` : '';
}

export function plainProgress(write: (s: string) => void): Progress {
  let prefix = '';
  let started = performance.now();
  let tokens = 0;
  return {
    cellStart(label, index, total) {
      prefix = `[${index + 1}/${total}]`;
      started = performance.now();
      tokens = 0;
      write(`${prefix} ${label} ...\n`);
    },
    cellDocs(_done, _total, t) {
      tokens = t ?? tokens;
    },
    cellEnd(label, status) {
      const r = rate(tokens, started);
      write(`${prefix} ${label} ${status}${r === '' ? '' : ` (${r})`}\n`);
    },
    stop() {},
  };
}

export function ttyProgress(stream: NodeJS.WriteStream): Progress {
  const bars = new cliProgress.MultiBar(
    { stream, clearOnComplete: false, hideCursor: true, format: '{name} |{bar}| {value}/{total} {unit} | ETA {eta_formatted} {rate}' },
    cliProgress.Presets.shades_classic,
  );
  let overall: cliProgress.SingleBar | null = null;
  let docs: cliProgress.SingleBar | null = null;
  let started = performance.now();
  return {
    cellStart(label, index, total) {
      overall ??= bars.create(total, index, { name: 'run ', unit: 'cells', rate: '' });
      overall.update(index);
      docs?.stop();
      if (docs) bars.remove(docs);
      started = performance.now();
      docs = bars.create(1, 0, { name: label, unit: 'docs', rate: '' });
    },
    cellDocs(done, total, tokens) {
      docs?.setTotal(total);
      docs?.update(done, { rate: rate(tokens ?? 0, started) });
    },
    cellEnd(label, status) {
      overall?.increment();
      bars.log(`${label} ${status}\n`);
    },
    stop() {
      bars.stop();
    },
  };
}

export function progressFor(stream: NodeJS.WriteStream, write: (s: string) => void): Progress {
  return stream.isTTY ? ttyProgress(stream) : plainProgress(write);
}
