// Progress on stderr: cli-progress bars (overall cells + documents of the current cell, with ETA)
// when stderr is a terminal, one plain line per cell event otherwise (CI logs, pipes, tests).
import cliProgress from 'cli-progress';

export interface Progress {
  cellStart(label: string, index: number, total: number): void;
  cellDocs(done: number, total: number): void;
  cellEnd(label: string, status: string): void;
  stop(): void;
}

export function plainProgress(write: (s: string) => void): Progress {
  let prefix = '';
  return {
    cellStart(label, index, total) {
      prefix = `[${index + 1}/${total}]`;
      write(`${prefix} ${label} ...\n`);
    },
    cellDocs() {},
    cellEnd(label, status) {
      write(`${prefix} ${label} ${status}\n`);
    },
    stop() {},
  };
}

export function ttyProgress(stream: NodeJS.WriteStream): Progress {
  const bars = new cliProgress.MultiBar(
    { stream, clearOnComplete: false, hideCursor: true, format: '{name} |{bar}| {value}/{total} {unit} | ETA {eta_formatted}' },
    cliProgress.Presets.shades_classic,
  );
  let overall: cliProgress.SingleBar | null = null;
  let docs: cliProgress.SingleBar | null = null;
  return {
    cellStart(label, index, total) {
      overall ??= bars.create(total, index, { name: 'run ', unit: 'cells' });
      overall.update(index);
      docs?.stop();
      if (docs) bars.remove(docs);
      docs = bars.create(1, 0, { name: label, unit: 'docs' });
    },
    cellDocs(done, total) {
      docs?.setTotal(total);
      docs?.update(done);
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
