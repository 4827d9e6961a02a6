// A zoo entry: one published LLaMA checkpoint, described by the exact `config.json` its HF repo
// publishes, so that parameter and memory accounting need no download.

export const LLAMA_VERSIONS = ['1', '2', '3', '3.1', '3.2', '3.3', '4'] as const;
export type LlamaVersion = (typeof LLAMA_VERSIONS)[number];

export const MODALITIES = ['text', 'text+image'] as const;
export type Modality = (typeof MODALITIES)[number];

/** A figure published by the model's authors, with where it was published. */
export interface PublishedFigure {
  value: number;
  source: string;
}

export interface ZooEntry {
  /** Our id, e.g. `llama-3.1-8b`. */
  id: string;
  family: 'llama';
  version: LlamaVersion;
  /** The Hugging Face repo the config comes from, e.g. `meta-llama/Llama-3.1-8B`. */
  hfRepo: string;
  modality: Modality;
  /**
   * The repo's `config.json`, verbatim (only fields that do not affect the architecture, such as
   * `transformers_version`, may be left out). Null for models whose weights were never released
   * (Llama 4 Behemoth): those carry `published` figures only.
   */
  config: Record<string, unknown> | null;
  /** Published totals; for entries without a config these are the only figures. */
  published?: {
    totalParams?: PublishedFigure;
    activeParams?: PublishedFigure;
    contextLength?: PublishedFigure;
    note?: string;
  };
}
