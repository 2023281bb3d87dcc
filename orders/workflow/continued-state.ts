// The state one run of an order hands to the next (continue-as-new), packed to stay far under
// Temporal's 2 MB payload limit: most of an order's plans is the options each instruction was
// offered (two thirds of the largest order's), and instructions resolved by one scheme version
// were offered the same list. Each distinct list is carried once. A run of older code handed its
// state unpacked; both forms are read.
import type { InstructionPlan } from '../../domain/instruction.js';
import type { ResolvedOption } from '../../domain/scheme.js';
import type { InstructionMachine } from './instruction-machine.js';
import type { OrderState } from './order-entity.js';

/**
 * A machine whose plan names its options by their place in `optionSets`, or holds them itself: one
 * added by a worker of the code before packing, during a deploy, to a state it was handed packed.
 */
export interface PackedMachine extends Omit<InstructionMachine, 'plan'> {
  plan: Omit<InstructionPlan, 'options'> & { options: number | ResolvedOption[] };
}

export interface ContinuedState extends Omit<OrderState, 'instructions'> {
  /** Every distinct list of options the instructions were offered. */
  optionSets: ResolvedOption[][];
  instructions: PackedMachine[];
}

export function packState(state: OrderState): ContinuedState {
  const optionSets: ResolvedOption[][] = [];
  const placeOf = new Map<string, number>();
  const instructions = state.instructions.map((machine): PackedMachine => {
    const key = JSON.stringify(machine.plan.options);
    let place = placeOf.get(key);
    if (place === undefined) {
      place = optionSets.push(machine.plan.options) - 1;
      placeOf.set(key, place);
    }
    return { ...machine, plan: { ...machine.plan, options: place } };
  });
  return { ...state, optionSets, instructions };
}

/** The state as a run works on it: every instruction with options of its own, as when it was planned. */
export function unpackState(continued: ContinuedState | OrderState): OrderState {
  if (!('optionSets' in continued)) return continued;
  const { optionSets, instructions, ...rest } = continued;
  return {
    ...rest,
    instructions: instructions.map((machine): InstructionMachine => ({
      ...machine,
      plan: {
        ...machine.plan,
        options:
          typeof machine.plan.options === 'number'
            ? optionSets[machine.plan.options].map(copyOption)
            : machine.plan.options,
      },
    })),
  };
}

function copyOption(option: ResolvedOption): ResolvedOption {
  return { ...option, voucherGroupIds: [...option.voucherGroupIds] };
}
