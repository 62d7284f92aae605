// The learning-rate schedule of the seed's recipe, written to match torch.optim.lr_scheduler.StepLR.
// (Adam itself is the head's: src/head/engine.ts and its kernel.)

export interface StepLrOptions {
  lr: number;
  stepSize: number;
  gamma: number;
}

/**
 * StepLR's learning rate during 1-based epoch `epoch`: lr·γ^floor((epoch-1)/stepSize). Computed by
 * repeated multiplication, as torch's scheduler does when it steps, so a non-power-of-two γ rounds the same way.
 */
export function stepLr(epoch: number, o: StepLrOptions): number {
  if (!Number.isInteger(epoch) || epoch < 1) throw new Error(`epoch must be a positive integer, got ${epoch}`);
  const decays = Math.floor((epoch - 1) / o.stepSize);
  let lr = o.lr;
  for (let i = 0; i < decays; i++) lr *= o.gamma;
  return lr;
}
