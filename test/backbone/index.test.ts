import { expect, it, vi } from 'vitest';
import { existsSync } from 'node:fs';
import { openBackbone } from '../../src/backbone/index.js';
import { onnxCudaAvailable } from '../../src/backbone/onnx.js';
import { UserError } from '../../src/errors.js';
import { CAFFE_PREPROCESS, IMAGENET_PREPROCESS } from '../../src/image/normalize.js';
import { describeShared, sharedPath } from '../helpers/shared.js';

async function withStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const value = await fn();
    return { value, stderr: spy.mock.calls.map((c) => String(c[0])).join('') };
  } finally {
    spy.mockRestore();
  }
}

const R18 = 'weights/resnet18-random.safetensors';
const R50 = 'weights/resnet50-keras.safetensors';

/**
 * Whether this machine has the README's GPU setup: onnxruntime's CUDA provider library installed
 * (ONNXRUNTIME_NODE_INSTALL=cuda12) and an NVIDIA driver loaded. Where both are, auto must use it.
 */
async function cudaSetup(): Promise<{ library: boolean; driver: boolean }> {
  return { library: await onnxCudaAvailable(), driver: existsSync('/proc/driver/nvidia/version') };
}

describeShared('openBackbone', [R18, R50], () => {
  it('auto picks onnx on CUDA where the GPU setup is, else on the CPU with why CUDA was skipped, in one stderr line', async () => {
    const cuda = await cudaSetup();
    const { value: bb, stderr } = await withStderr(() => openBackbone({ weights: sharedPath(R18), threads: 2 }));
    try {
      expect(bb).toMatchObject({ arch: 'resnet18', dim: 512, preprocess: IMAGENET_PREPROCESS, weightsSha256: '7c8b3835feb4c4df1bf72149d7bbed009690b02036730f90fe1921f2629ebd79' });
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      if (cuda.library && cuda.driver) {
        expect(bb.engine).toMatchObject({ engine: 'onnx', backend: 'onnxruntime cuda', device: 'cuda' });
        expect(lines[0]).toMatch(/^backbone: resnet18 \(weights sha256 7c8b38…\) on onnx \(onnxruntime cuda\), device cuda, /);
      } else {
        expect(bb.engine).toMatchObject({ engine: 'onnx', backend: 'onnxruntime cpu', device: 'cpu', threads: 2 });
        // without the library the reason is that; with it but no GPU, it is the session's own error
        const why = cuda.library ? '.+' : 'onnxruntime-node has no CUDA EP here';
        expect(lines[0]).toMatch(new RegExp(`^backbone: resnet18 \\(weights sha256 7c8b38…\\) on onnx \\(onnxruntime cpu\\), device cpu, 2 threads; skipped: onnx cuda \\(${why}`));
      }
    } finally {
      await bb.engine.dispose();
    }
  });

  it('--engine tfjs --device cpu gives the tfjs engine; quiet prints nothing', async () => {
    const { value: bb, stderr } = await withStderr(() => openBackbone({ weights: sharedPath(R18), engine: 'tfjs', device: 'cpu', threads: 2, quiet: true }));
    try {
      expect(stderr).toBe('');
      expect(bb.engine.engine).toBe('tfjs');
      expect(bb.engine.backend).toMatch(/^(tfjs-node|tfjs wasm|tfjs cpu)$/);
    } finally {
      await bb.engine.dispose();
    }
  });

  it('keras-v1 weights: resnet50, 2048-d, caffe preprocessing from the metadata, logits on request', async () => {
    const bb = await openBackbone({ weights: sharedPath(R50), threads: 2, quiet: true, logits: true });
    try {
      expect(bb).toMatchObject({ arch: 'resnet50', dim: 2048, preprocess: CAFFE_PREPROCESS });
      expect(bb.metadata.format).toBe('keras-v1');
      expect(typeof bb.engine.logits).toBe('function');
    } finally {
      await bb.engine.dispose();
    }
  });

  it('--device cuda: the CUDA engine where the GPU setup is, else a clear one-line error', async () => {
    const cuda = await cudaSetup();
    if (cuda.library && cuda.driver) {
      const bb = await openBackbone({ weights: sharedPath(R18), device: 'cuda', quiet: true });
      try {
        expect(bb.engine).toMatchObject({ engine: 'onnx', device: 'cuda' });
      } finally {
        await bb.engine.dispose();
      }
      return;
    }
    const err = await openBackbone({ weights: sharedPath(R18), device: 'cuda', quiet: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^no backbone engine works for --engine auto --device cuda: onnx cuda \(.*\); tfjs-node-gpu \(.*\)$/);
  });

  it('bad options and files are UserErrors', async () => {
    await expect(openBackbone({ weights: sharedPath(R18), threads: 0, quiet: true })).rejects.toThrow(/--threads must be a positive integer/);
    await expect(openBackbone({ weights: '/nonexistent/w.safetensors', quiet: true })).rejects.toThrow(/^\/nonexistent\/w\.safetensors: cannot read weights: no such file$/);
  });
});
