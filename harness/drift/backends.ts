// The backends a drift side can run on; its own file so the CLI's flag definitions stay cheap to import.
export const DRIFT_BACKENDS = ['reference', 'ort'] as const;
export type DriftBackend = (typeof DRIFT_BACKENDS)[number];
