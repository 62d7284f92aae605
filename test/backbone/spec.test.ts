import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/backbone/safetensors.js';
import {
  ARCHS, buildResNet, expectedTensors, forwardMacs, inferArch, resnetSpec, resolveVariant, type ArchName, type Variant,
} from '../../src/backbone/spec.js';
import { IMAGENET_PREPROCESS, CAFFE_PREPROCESS } from '../../src/image/normalize.js';
import { UserError } from '../../src/errors.js';
import { describeShared, sharedPath } from '../helpers/shared.js';
import { rng, synthetic, tv } from '../helpers/synthetic-net.js';

function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('resnetSpec', () => {
  it('has the published layer counts and feature widths', () => {
    const convs = (a: ArchName) => resnetSpec(tv(a)).blocks.reduce((n, b) => n + b.convs.length + (b.downsample ? 1 : 0), 1);
    expect(convs('resnet18')).toBe(20);
    expect(convs('resnet34')).toBe(36);
    expect(convs('resnet50')).toBe(53);
    expect(resnetSpec(tv('resnet18')).dim).toBe(512);
    expect(resnetSpec(tv('resnet34')).dim).toBe(512);
    expect(resnetSpec(tv('resnet50')).dim).toBe(2048);
  });

  it('ResNet18 at 224x224 is 1.82 GMAC, ResNet50 4.1 GMAC (the published figures)', () => {
    expect(forwardMacs(resnetSpec(tv('resnet18')), 224, 224) / 1e9).toBeCloseTo(1.81, 1);
    expect(forwardMacs(resnetSpec(tv('resnet50')), 224, 224) / 1e9).toBeCloseTo(4.1, 1);
  });

  it('puts the bottleneck stride on the 3x3 (torchvision) or on the first 1x1 (stride_in_1x1), and on the shortcut', () => {
    const l2 = (v: Variant) => resnetSpec(v).blocks.find((b) => b.name === 'layer2.0')!;
    const t = l2(tv('resnet50'));
    expect(t.convs.map((c) => [c.k, c.stride, c.pad])).toEqual([[1, 1, 0], [3, 2, 1], [1, 1, 0]]);
    const k = l2(tv('resnet50', { strideIn1x1: true }));
    expect(k.convs.map((c) => [c.k, c.stride, c.pad])).toEqual([[1, 2, 0], [3, 1, 1], [1, 1, 0]]);
    expect(k.downsample).toMatchObject({ k: 1, stride: 2, inC: 256, outC: 512 });
    const b = resnetSpec(tv('resnet18')).blocks;
    expect(b.find((x) => x.name === 'layer1.0')!.downsample).toBeUndefined();
    expect(b.find((x) => x.name === 'layer3.0')!.convs.map((c) => c.stride)).toEqual([2, 1]);
  });
});

describe('inferArch / resolveVariant', () => {
  it('infers every architecture from its tensor names alone', () => {
    for (const arch of Object.keys(ARCHS) as ArchName[]) {
      expect(inferArch(expectedTensors(resnetSpec(tv(arch)), 1000).map((t) => t.name))).toBe(arch);
    }
    expect(inferArch(['conv1.weight', 'fc.weight'])).toBeUndefined();
  });

  it('metadata first, then tensor names, then --backbone', () => {
    const r50names = expectedTensors(resnetSpec(tv('resnet50'))).map((t) => t.name);
    expect(resolveVariant('f', { arch: 'resnet34' }, r50names).arch).toBe('resnet34');
    expect(resolveVariant('f', { format: 'pt' }, r50names, 'resnet18').arch).toBe('resnet50');
    expect(resolveVariant('f', {}, ['conv1.weight'], 'resnet34').arch).toBe('resnet34');
    expect(err(() => resolveVariant('f.st', {}, ['conv1.weight']))).toMatch(/^f\.st: cannot tell the architecture .*pass --backbone/);
  });

  it('keras-v1 defaults (stride in 1x1, conv bias, eps 1e-3, caffe) and explicit overrides', () => {
    const k = resolveVariant('f', { format: 'keras-v1', arch: 'resnet50' }, []);
    expect(k).toMatchObject({ strideIn1x1: true, convBias: true, bnEps: 1e-3, preprocess: CAFFE_PREPROCESS });
    const t = resolveVariant('f', { arch: 'resnet18' }, []);
    expect(t).toMatchObject({ format: 'torchvision', strideIn1x1: false, convBias: false, bnEps: 1e-5, preprocess: IMAGENET_PREPROCESS });
    const o = resolveVariant('f', { arch: 'resnet50', stride_in_1x1: 'true', conv_bias: 'false', bn_eps: '0.002', preprocess: 'caffe' }, ['conv1.bias']);
    expect(o).toMatchObject({ strideIn1x1: true, convBias: false, bnEps: 0.002, preprocess: CAFFE_PREPROCESS });
    // Without conv_bias metadata, a torchvision file with conv biases is read with them.
    expect(resolveVariant('f', { arch: 'resnet18' }, ['conv1.bias']).convBias).toBe(true);
  });

  it('bad metadata values name the file and the key', () => {
    expect(err(() => resolveVariant('w.st', { arch: 'resnet19' }, []))).toMatch(/^w\.st: metadata "arch" is "resnet19", expected one of resnet18/);
    expect(err(() => resolveVariant('w.st', { arch: 'resnet18', format: 'onnx' }, []))).toMatch(/^w\.st: metadata "format" is "onnx"/);
    expect(err(() => resolveVariant('w.st', { arch: 'resnet18', bn_eps: '-1' }, []))).toMatch(/^w\.st: metadata "bn_eps" is "-1", expected a positive number/);
    expect(err(() => resolveVariant('w.st', { arch: 'resnet18', stride_in_1x1: 'yes' }, []))).toMatch(/^w\.st: metadata "stride_in_1x1" is "yes"/);
    expect(err(() => resolveVariant('w.st', { arch: 'resnet18', preprocess: 'tf' }, []))).toMatch(/^w\.st: metadata unknown preprocess "tf"/);
  });
});

describe('buildResNet: names and shapes against the spec', () => {
  it('accepts a complete file, with or without fc, and ignores num_batches_tracked', () => {
    const f = synthetic(tv('resnet18'), { fc: 1000 });
    f.tensors.set('bn1.num_batches_tracked', { name: 'bn1.num_batches_tracked', dtype: 'I64', shape: [], begin: 0, end: 8 });
    const net = buildResNet(f);
    expect(net.dim).toBe(512);
    expect(net.fc!.classes).toBe(1000);
    expect(net.blocks).toHaveLength(8);
    expect(buildResNet(synthetic(tv('resnet18'))).fc).toBeUndefined();
    expect(buildResNet(synthetic(tv('resnet18'), { fc: 20 })).fc!.classes).toBe(20);
  });

  it('names the first missing tensor', () => {
    const f = synthetic(tv('resnet18'), { fc: 1000 });
    f.tensors.delete('layer3.1.bn2.running_mean');
    expect(err(() => buildResNet(f))).toBe('synthetic.safetensors: tensor "layer3.1.bn2.running_mean" is missing (expected for resnet18 (torchvision))');
    const g = synthetic(tv('resnet18'), { fc: 1000 });
    g.tensors.delete('fc.bias');
    expect(err(() => buildResNet(g))).toMatch(/tensor "fc\.bias" is missing/);
  });

  it('names a wrong shape, with both shapes', () => {
    const f = synthetic(tv('resnet18'));
    const t = f.tensors.get('layer2.0.conv1.weight')!;
    t.shape = [128, 64, 1, 3];
    expect(err(() => buildResNet(f))).toBe('synthetic.safetensors: tensor "layer2.0.conv1.weight" has shape [128, 64, 1, 3], expected [128, 64, 3, 3] for resnet18 (torchvision)');
  });

  it('names an unexpected tensor (e.g. the wrong architecture) and a non-float dtype', () => {
    const f = synthetic(tv('resnet34'), { metadata: { arch: 'resnet18' } });
    expect(err(() => buildResNet(f))).toMatch(/tensor "layer1\.2\.conv1\.weight" for resnet18|unexpected tensor "layer1\.2\./);
    const g = synthetic(tv('resnet18'));
    g.tensors.set('bn1.weight', { ...g.tensors.get('bn1.weight')!, dtype: 'I32', data: undefined });
    expect(err(() => buildResNet(g))).toMatch(/tensor "bn1\.weight" has dtype I32, expected a float type/);
  });

  it('refuses weights with inf/NaN or a negative running_var', () => {
    const f = synthetic(tv('resnet18'));
    f.tensors.get('layer4.1.conv2.weight')!.data![5] = NaN;
    expect(err(() => buildResNet(f))).toMatch(/"layer4\.1\.conv2" with "layer4\.1\.bn2" has non-finite values/);
    const g = synthetic(tv('resnet18'));
    g.tensors.get('bn1.running_var')!.data![0] = -1;
    expect(err(() => buildResNet(g))).toMatch(/"bn1\.running_var"\[0\] is -1/);
  });

  it('folding BatchNorm into the conv gives the same output as conv then BatchNorm (eval)', () => {
    const cases = [
      synthetic(tv('resnet18')),
      synthetic(tv('resnet50', { convBias: true, bnEps: 1e-3, strideIn1x1: true }), { metadata: { arch: 'resnet50', format: 'keras-v1' } }),
    ];
    for (const f of cases) {
      const net = buildResNet(f);
      const v = net.variant;
      expect(v.bnEps).toBe(f.metadata.format ? 1e-3 : 1e-5);
      const r = rng(3);
      for (const c of [net.stem, net.blocks[4]!.convs[0]!]) {
        const per = c.inC * c.k * c.k;
        const x = Array.from({ length: per }, () => r() * 4 - 2);
        const w = f.tensors.get(`${c.conv}.weight`)!.data!;
        const b = f.tensors.get(`${c.conv}.bias`)?.data;
        const g = (n: string) => f.tensors.get(`${c.bn}.${n}`)!.data!;
        for (const o of [0, 7, c.outC - 1]) {
          let raw = b ? b[o]! : 0;
          let folded = c.bias[o]!;
          for (let i = 0; i < per; i++) {
            raw += w[o * per + i]! * x[i]!;
            folded += c.weight[o * per + i]! * x[i]!;
          }
          const bn = ((raw - g('running_mean')[o]!) / Math.sqrt(g('running_var')[o]! + v.bnEps)) * g('weight')[o]! + g('bias')[o]!;
          expect(Math.abs(folded - bn)).toBeLessThan(1e-5 * (1 + Math.abs(bn)));
        }
      }
    }
  });
});

describeShared('the spec matches the shared weight files exactly', ['weights/resnet18-random.safetensors', 'weights/resnet50-keras.safetensors'], () => {
  it('resnet18-random: the same names in the same order as torchvision resnet18().state_dict()', async () => {
    const st = await readSafetensors(sharedPath('weights/resnet18-random.safetensors'));
    const v = resolveVariant(st.path, st.metadata, st.tensors.keys());
    expect(v).toMatchObject({ arch: 'resnet18', format: 'torchvision', convBias: false, bnEps: 1e-5 });
    expect([...st.tensors.keys()]).toEqual(expectedTensors(resnetSpec(v), 1000).map((t) => t.name));
  });

  it('resnet50-keras: keras-v1 metadata honoured, biased convs after their weights', async () => {
    const st = await readSafetensors(sharedPath('weights/resnet50-keras.safetensors'));
    const v = resolveVariant(st.path, st.metadata, st.tensors.keys());
    expect(v).toMatchObject({ arch: 'resnet50', format: 'keras-v1', strideIn1x1: true, convBias: true, bnEps: 1e-3, preprocess: CAFFE_PREPROCESS });
    expect([...st.tensors.keys()]).toEqual(expectedTensors(resnetSpec(v), 1000).map((t) => t.name));
  });
});
