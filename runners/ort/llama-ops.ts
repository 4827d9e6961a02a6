// Small composite ops over OnnxGraphBuilder for the LLaMA graph: cached constants, Gemm against a
// torch-layout [out, in] weight, RMSNorm, SiLU. Kept apart from the graph so llama-graph.ts and
// llama-blocks.ts read as the model, not as protobuf plumbing.
import { numberToF16Bits } from '../hf/dtype.ts';
import type { OnnxGraphBuilder, AttrValue } from './onnx-builder.ts';

/** ONNX element types of a graph's activations and weights (`--dtype fp32|fp16`). */
export type FloatType = 'float32' | 'float16';
const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;

export class GraphOps {
  private readonly constants = new Map<string, string>();
  private counter = 0;
  /**
   * Element type of activations and weights. float16 graphs keep fp32 where HF's fp16 LLaMA does
   * (RMSNorm statistics, attention softmax, RoPE angles): see `toF32` / `fromF32` at those places.
   */
  floatType: FloatType = 'float32';

  constructor(readonly g: OnnxGraphBuilder) {}

  /** A cached scalar in the activation type (`f32` in fp32 graphs). */
  scalar(value: number): string {
    if (this.floatType === 'float32') return this.f32(value);
    const key = `f16:${Object.is(value, -0) ? '-0' : String(value)}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.g.initializer(`const_f16_${this.counter++}`, Uint16Array.of(numberToF16Bits(value)), [], 'float16');
      this.constants.set(key, name);
    }
    return name;
  }

  /** A weight initializer in the activation type (fp32 data rounded to fp16 in fp16 graphs). */
  floatInitializer(name: string, data: Float32Array, dims: readonly number[]): string {
    if (this.floatType === 'float32') return this.g.initializer(name, data, dims);
    const half = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) half[i] = numberToF16Bits(data[i]!);
    return this.g.initializer(name, half, dims, 'float16');
  }

  /** `x` (activation type) as float32; the value itself in fp32 graphs. */
  toF32(x: string): string {
    return this.floatType === 'float32' ? x : this.op('Cast', [x], { to: ONNX_FLOAT });
  }

  /** `x` (float32) in the activation type; the value itself in fp32 graphs. */
  fromF32(x: string): string {
    return this.floatType === 'float32' ? x : this.op('Cast', [x], { to: ONNX_FLOAT16 });
  }

  /** A cached int64 constant (1-D, or a scalar). */
  i64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.g.ints(`const_i64_${this.counter++}`, values, scalar);
      this.constants.set(key, name);
    }
    return name;
  }

  /** A cached float32 scalar constant. */
  f32(value: number): string {
    const key = `f32:${Object.is(value, -0) ? '-0' : String(value)}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.g.initializer(`const_f32_${this.counter++}`, Float32Array.of(value), []);
      this.constants.set(key, name);
    }
    return name;
  }

  op(type: string, inputs: readonly string[], attrs?: Record<string, AttrValue>): string {
    return this.g.op(type, inputs, attrs ? { attrs } : {});
  }

  /**
   * x [N, in] times a torch nn.Linear weight [out, in] (+ bias): Gemm with transB, so weights go
   * into the graph exactly as stored, without a transposed copy.
   */
  linear(x: string, weight: string, bias: string | null): string {
    return this.op('Gemm', bias ? [x, weight, bias] : [x, weight], { transB: 1 });
  }

  reshape(x: string, shape: string | readonly number[]): string {
    return this.op('Reshape', [x, typeof shape === 'string' ? shape : this.i64(shape)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: [...perm] });
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.i64(axes)]);
  }

  /** Splits `x` along `axis` into pieces of the given sizes. */
  split(x: string, sizes: readonly number[], axis: number): string[] {
    return this.g.node('Split', [x, this.i64(sizes)], sizes.length, { attrs: { axis } });
  }

  /**
   * RMSNorm over the last axis, x / sqrt(mean(x²) + eps) (* weight), as HF LlamaRMSNorm; with a
   * null weight it is Llama 4's parameter-free Llama4TextL2Norm.
   */
  rmsNorm(x: string, weight: string | null, eps: number): string {
    // HF LlamaRMSNorm normalises in float32 and casts back before the weight: x^2 of fp16 activations
    // overflows at |x| > 256.
    const x32 = this.toF32(x);
    const meanSquare = this.op('ReduceMean', [this.op('Mul', [x32, x32]), this.i64([-1])], { keepdims: 1 });
    const normed = this.fromF32(this.op('Div', [x32, this.op('Sqrt', [this.op('Add', [meanSquare, this.f32(eps)])])]));
    return weight ? this.op('Mul', [normed, weight]) : normed;
  }

  silu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [x])]);
  }

  /** torch.nn.LayerNorm over the last axis (biased variance): ONNX LayerNormalization (opset 17+). */
  layerNorm(x: string, weight: string, bias: string, eps: number): string {
    return this.op('LayerNormalization', [x, weight, bias], { axis: -1, epsilon: { float: eps } });
  }

  /** Exact GELU, x/2 · (1 + erf(x/√2)) (torch `gelu`, CLIP-style MLPs), not the tanh approximation. */
  gelu(x: string): string {
    const erf = this.op('Erf', [this.op('Mul', [x, this.f32(Math.SQRT1_2)])]);
    return this.op('Mul', [this.op('Mul', [x, this.f32(0.5)]), this.op('Add', [erf, this.f32(1)])]);
  }
}
