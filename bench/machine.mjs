// The CPU a bench figure was measured on, for every bench's JSON: the README names the CPU beside each
// figure, and whether int8 pays depends on the VNNI/AMX flags.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const FLAGS = ['avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8', 'amx_tile', 'avx512_bf16', 'avx512_fp16'];

export function cpuInfo() {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the model from Node only
  }
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const family = Number(/^cpu family\s*:\s*(\d+)/m.exec(text)?.[1]);
  const modelNumber = Number(/^model\s*:\s*(\d+)/m.exec(text)?.[1]);
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  return {
    // "AMD EPYC" alone does not say which generation; family 26 (0x1A) is Zen 5, 25 Zen 3/4, 23 Zen 1/2.
    model: family === 26 && /AMD/.test(model) ? `${model} (Zen 5)` : model,
    // A virtual machine's model name may be generic ("Intel(R) Xeon(R) Processor"): family/model and flags tell more.
    family, modelNumber,
    cores: cpus().length,
    flags: FLAGS.filter((f) => flags.has(f)),
    vnni: flags.has('avx512_vnni') || flags.has('avx_vnni') || flags.has('amx_int8'),
  };
}
