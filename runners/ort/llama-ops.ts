// Small composite ops over OnnxGraphBuilder for the LLaMA graph: cached constants, Gemm against a
// torch-layout [out, in] weight, RMSNorm, SiLU. Kept apart from the graph so llama-graph.ts and
// llama-blocks.ts read as the model, not as protobuf plumbing.
import type { OnnxGraphBuilder, AttrValue } from './onnx-builder.ts';

export class GraphOps {
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(readonly g: OnnxGraphBuilder) {}

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
    const meanSquare = this.op('ReduceMean', [this.op('Mul', [x, x]), this.i64([-1])], { keepdims: 1 });
    const normed = this.op('Div', [x, this.op('Sqrt', [this.op('Add', [meanSquare, this.f32(eps)])])]);
    return weight ? this.op('Mul', [normed, weight]) : normed;
  }

  silu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [x])]);
  }
}
