// Charts for the HTML report: vega-lite specs compiled and rendered to SVG here in Node by vega's
// headless View (no canvas, no browser), so the report is plain markup with nothing to run.
export type Spec = Record<string, unknown>;

/** White background, the page's font, no frame around each view. */
export const base = { background: 'white', config: { font: 'sans-serif', view: { stroke: null } } };

export async function toSvg(spec: Spec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    // Its width/height give the picture its natural size; the page's CSS (max-width:100%) lets it shrink.
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
