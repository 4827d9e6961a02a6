// A small typed ONNX graph builder over onnx-proto. The harness builds every graph in
// TypeScript (no Python export step, DESIGN.md "Models"), so this is shared by the kernel
// benches and the ORT runner: inputs/outputs with symbolic or fixed dims, initializers from
// typed arrays (stored as raw_data, which is little-endian like every host we run on), nodes in
// any domain (com.microsoft contrib ops included) and the opset imports that domain needs.
import { appendFileSync, writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.IModelProto;

/** The tensor element types the harness uses, named as ONNX names them. */
export const ONNX_DTYPES = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  float16: onnx.TensorProto.DataType.FLOAT16,
} as const;
export type OnnxDtype = keyof typeof ONNX_DTYPES;

/** A dimension: a fixed size or a symbolic name ("batch", "seq"). */
export type Dim = number | string;
export type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] };

export type InitData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array;

const DEFAULT_OPSETS: Record<string, number> = { '': 21, 'com.microsoft': 1 };
// IR version 10 pairs with opset 21..22 (onnx/onnx docs/Versioning.md); ORT 1.30 reads it.
const DEFAULT_IR_VERSION = 10;

function valueInfo(name: string, dtype: OnnxDtype, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPES[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    // Integer-valued numbers are INT attributes; ONNX float attributes must say so via {float}.
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; pass { float: ${value} } for a float attribute`);
    return { name, type: T.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'number')) return { name, type: T.INTS, ints: value as number[] };
    return { name, type: T.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) };
  }
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.FLOATS, floats: value.floats };
}

function dtypeOf(data: InitData): OnnxDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'float16'; // Uint16Array carries float16 bit patterns
}

export interface NodeOptions {
  domain?: string;
  name?: string;
  attrs?: Record<string, AttrValue>;
}

/** Accumulates a graph; `build()` gives the ModelProto, `toBytes()` its serialized form. */
export class OnnxGraphBuilder {
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly opsets = new Map<string, number>();
  private readonly names = new Set<string>();
  private counter = 0;
  private external: { path: string; location: string; threshold: number; offset: number } | null = null;

  constructor(readonly graphName = 'graph', opsets: Record<string, number> = {}) {
    for (const [domain, version] of Object.entries({ ...DEFAULT_OPSETS, ...opsets })) this.opsets.set(domain, version);
  }

  /**
   * Stores initializers of at least `thresholdBytes` in the file `path` (named `location` in the
   * model, relative to the model file) instead of inside the protobuf: models past protobuf's
   * 2 GiB limit need it, and each tensor reaches disk as it is added, so the caller's array can be
   * dropped at once. Offsets are 4 KiB-aligned so ORT can memory-map them. Truncates `path`.
   */
  externalData(path: string, location: string, thresholdBytes = 1024): this {
    writeFileSync(path, new Uint8Array(0));
    this.external = { path, location, threshold: thresholdBytes, offset: 0 };
    return this;
  }

  /** Sets (or raises) the opset version imported for a domain. */
  opset(domain: string, version: number): this {
    this.opsets.set(domain, version);
    return this;
  }

  private claim(name: string): string {
    // ORT rejects a graph that defines a value twice with a message that names neither node.
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.graphName}: value "${name}" is defined twice`);
    this.names.add(name);
    return name;
  }

  input(name: string, dtype: OnnxDtype, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, dims));
    return name;
  }

  /** Declares `name` a graph output; the value must be produced by a node or be an input. */
  output(name: string, dtype: OnnxDtype, dims: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  initializer(name: string, data: InitData, dims: readonly number[], dtype: OnnxDtype = dtypeOf(data)): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`initializer ${name}: dims [${dims.join(', ')}] hold ${count} elements but data has ${data.length}`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const ext = this.external;
    if (ext && bytes.byteLength >= ext.threshold) {
      const start = Math.ceil(ext.offset / 4096) * 4096;
      if (start > ext.offset) appendFileSync(ext.path, new Uint8Array(start - ext.offset));
      appendFileSync(ext.path, bytes);
      ext.offset = start + bytes.byteLength;
      this.initializers.push({
        name: this.claim(name),
        dataType: ONNX_DTYPES[dtype],
        dims: [...dims],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: ext.location },
          { key: 'offset', value: String(start) },
          { key: 'length', value: String(bytes.byteLength) },
        ],
      });
      return name;
    }
    this.initializers.push({
      name: this.claim(name),
      dataType: ONNX_DTYPES[dtype],
      dims: [...dims],
      rawData: bytes,
    });
    return name;
  }

  /** A scalar or 1-D int64 constant (shapes, axes), as an initializer. */
  ints(name: string, values: readonly number[], scalar = false): string {
    return this.initializer(name, BigInt64Array.from(values.map(BigInt)), scalar ? [] : [values.length], 'int64');
  }

  /** Adds a node; `outputs` may be names or a count (fresh names are generated). Returns output names. */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, options: NodeOptions = {}): string[] {
    const outNames = typeof outputs === 'number'
      ? Array.from({ length: outputs }, () => `${opType}_${this.counter++}`)
      : [...outputs];
    for (const o of outNames) this.claim(o);
    const domain = options.domain ?? '';
    if (!this.opsets.has(domain)) throw new Error(`node ${opType}: domain "${domain}" has no opset import; call opset("${domain}", version) first`);
    this.nodes.push({
      opType,
      domain,
      name: options.name ?? `${opType}_node_${this.nodes.length}`,
      input: [...inputs],
      output: outNames,
      attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    });
    return outNames;
  }

  /** Shorthand for a one-output node. */
  op(opType: string, inputs: readonly string[], options: NodeOptions = {}): string {
    return this.node(opType, inputs, 1, options)[0] as string;
  }

  build(): ModelProto {
    return {
      irVersion: DEFAULT_IR_VERSION,
      producerName: 'llama-eval',
      opsetImport: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      graph: {
        name: this.graphName,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    };
  }

  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(onnx.ModelProto.create(this.build())).finish();
  }
}

/** Decodes serialized bytes back to a ModelProto (for tests and inspection). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
