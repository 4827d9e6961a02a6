// Shapes shared by the parameter-counting modules.

/** A parameter count of one model, split so that reports can show where the parameters sit. */
export interface ParamCount {
  /** Every parameter of the HF `*ForCausalLM` text model (tied embeddings counted once). */
  total: number;
  /** Parameters touched per token: MoE counts only the routed top-k experts + shared expert. */
  active: number;
  /** Input embedding rows (+ the untied LM head is NOT included here; it is in components). */
  embedding: number;
  /** Vision encoder + projector (multimodal models only), not part of `total`. */
  vision: number | null;
  /** Named parts, summing to `total` (+ `vision` parts prefixed `vision.`). */
  components: Record<string, number>;
}

/** Counts of a vision tower: encoder + multimodal projector. */
export interface VisionParamCount {
  total: number;
  components: Record<string, number>;
}
