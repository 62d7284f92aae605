// Pixel normalisation as lookup tables: every uint8 value of every channel maps to exactly the
// float32 that torchvision (ToTensor + Normalize) or Keras' caffe mode computes, at the cost of one
// load per channel in the view kernels.

/** How raw RGB 0..255 pixels become the network's input: v = (x/255 - mean)/std (imagenet), or BGR x - mean (caffe). */
export interface Preprocess {
  kind: 'imagenet' | 'caffe';
  /** Channel order the network consumes. */
  bgr: boolean;
  /** Per input channel (in network channel order), applied as (x*scale - mean) / std. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET_PREPROCESS: Preprocess = {
  kind: 'imagenet',
  bgr: false,
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export const CAFFE_PREPROCESS: Preprocess = {
  kind: 'caffe',
  bgr: true,
  scale: 1,
  mean: [103.939, 116.779, 123.68],
  std: [1, 1, 1],
};

export function preprocessFor(kind: string | undefined): Preprocess {
  if (kind === undefined || kind === 'imagenet') return IMAGENET_PREPROCESS;
  if (kind === 'caffe') return CAFFE_PREPROCESS;
  throw new Error(`unknown preprocess "${kind}" (expected imagenet or caffe)`);
}

/**
 * Tables for the network's input channels 0..2: `lut[c * 256 + v]` is the input value for source
 * byte v of the RGB channel that feeds network channel c (`srcChannel[c]`: BGR networks read 2,1,0).
 */
export interface NormLut {
  lut: Float32Array;
  srcChannel: [number, number, number];
}

export function makeNormLut(p: Preprocess): NormLut {
  const f = Math.fround;
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = f(p.mean[c]!);
    const std = f(p.std[c]!);
    for (let v = 0; v < 256; v++) {
      // float32 at every step, as torch does: x/255, then -mean, then /std
      const x = p.scale === 1 ? v : f(v / 255);
      lut[c * 256 + v] = p.std[c] === 1 ? f(x - mean) : f(f(x - mean) / std);
    }
  }
  return { lut, srcChannel: p.bgr ? [2, 1, 0] : [0, 1, 2] };
}
