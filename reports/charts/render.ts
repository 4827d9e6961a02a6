// Offline rendering: Vega-Lite -> Vega -> SVG in Node (no browser, no canvas), SVG -> PNG with
// resvg. Text needs a system font for the PNG; resvg falls back silently without one.
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG at 2x so it stays sharp in a PR comment on a high-DPI screen. */
export function svgToPng(svg: string): Buffer {
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white', font: { loadSystemFonts: true } }).render().asPng();
  return Buffer.from(png);
}
