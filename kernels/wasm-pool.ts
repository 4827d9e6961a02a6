// A pool of worker threads that each instantiate the same WebAssembly module over ONE shared
// memory and run an exported function on request. Calls are synchronous for the caller
// (Atomics.wait on the main thread), so a decode step costs no event-loop round trip: the
// main thread runs its own share, then waits for the workers' shares.
import { Worker } from 'node:worker_threads';

// Plain-JS worker (eval) so it runs the same under node, tsx and vitest without a TS loader.
// Control block (Int32Array): [0] request seq (-1 = exit), [1] done seq, [2] export index,
// [3] argument count, [4..] arguments.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.once('message', ({ module, memory, control, names }) => {
  const exports = new WebAssembly.Instance(module, { env: { mem: memory } }).exports;
  const fns = names.map((n) => exports[n]);
  const c = new Int32Array(control);
  let seen = 0;
  parentPort.postMessage('ready');
  for (;;) {
    Atomics.wait(c, 0, seen);
    seen = Atomics.load(c, 0);
    if (seen < 0) return;
    fns[c[2]](...Array.from(c.subarray(4, 4 + c[3])));
    Atomics.store(c, 1, seen);
    Atomics.notify(c, 1);
  }
});`;

interface PoolWorker {
  worker: Worker;
  control: Int32Array;
}

export class WasmPool {
  private seq = 0;
  private readonly own: Record<string, (...args: number[]) => void>;

  private constructor(
    private readonly workers: PoolWorker[],
    private readonly names: readonly string[],
    instance: WebAssembly.Instance,
  ) {
    this.own = instance.exports as Record<string, (...args: number[]) => void>;
  }

  /**
   * threads = total including the calling thread; names = the exports callers may run.
   * `module` may be one per thread (index 0 = the calling thread), for kernels that bake a
   * thread's private scratch address into their code.
   */
  static async create(module: WebAssembly.Module | readonly WebAssembly.Module[], memory: WebAssembly.Memory, threads: number, names: readonly string[]): Promise<WasmPool> {
    const moduleOf = (i: number): WebAssembly.Module => {
      if (!Array.isArray(module)) return module as WebAssembly.Module;
      const m = (module as readonly WebAssembly.Module[])[i];
      if (!m) throw new Error(`WasmPool: no module for thread ${i} of ${threads}`);
      return m;
    };
    const workers = await Promise.all(Array.from({ length: Math.max(0, threads - 1) }, async (_, i) => {
      const threadModule = moduleOf(i + 1);
      // execArgv [] : the eval'd source is plain CommonJS and needs no loader, and an inherited
      // --input-type=module would break it (V8 flags such as relaxed SIMD are process-wide anyway).
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
      const control = new Int32Array(new SharedArrayBuffer(4 * 32));
      const ready = new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      worker.postMessage({ module: threadModule, memory, control: control.buffer, names });
      await ready;
      // Never keep the process alive just for an idle pool.
      worker.unref();
      return { worker, control };
    }));
    return new WasmPool(workers, names, new WebAssembly.Instance(moduleOf(0), { env: { mem: memory } }));
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Runs `name` on the calling thread only. */
  call(name: string, ...args: number[]): void {
    const fn = this.own[name];
    if (!fn) throw new Error(`wasm export ${name} not found`);
    fn(...args);
  }

  /** Runs `name` once per thread with that thread's arguments (index 0 = this thread); waits for all. */
  parallel(name: string, argsPerThread: (thread: number) => number[]): void {
    const index = this.names.indexOf(name);
    if (index < 0) throw new Error(`wasm export ${name} is not registered with the pool`);
    this.seq++;
    this.workers.forEach((w, i) => {
      const args = argsPerThread(i + 1);
      w.control[2] = index;
      w.control[3] = args.length;
      w.control.set(args, 4);
      Atomics.store(w.control, 0, this.seq);
      Atomics.notify(w.control, 0);
    });
    this.call(name, ...argsPerThread(0));
    for (const w of this.workers) {
      while (Atomics.load(w.control, 1) !== this.seq) Atomics.wait(w.control, 1, Atomics.load(w.control, 1));
    }
  }

  async close(): Promise<void> {
    for (const w of this.workers) {
      Atomics.store(w.control, 0, -1);
      Atomics.notify(w.control, 0);
    }
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    this.workers.length = 0;
  }
}
