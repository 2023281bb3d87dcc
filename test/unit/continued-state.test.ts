import { describe, expect, it } from 'vitest';
import type { InstructionPlan } from '../../domain/instruction.js';
import type { ResolvedOption } from '../../domain/scheme.js';
import { packState, unpackState } from '../../orders/workflow/continued-state.js';
import { newMachine } from '../../orders/workflow/instruction-machine.js';
import { OrderEntity, type OrderState } from '../../orders/workflow/order-entity.js';

const option = (paymentMethod: ResolvedOption['paymentMethod'], voucherGroupIds: string[] = []): ResolvedOption => ({
  paymentMethod,
  appId: `APP_${paymentMethod}`,
  priority: 0,
  voucherGroupIds,
});

function stateWith(optionLists: ResolvedOption[][]): OrderState {
  const state = OrderEntity.initialState({
    tenantId: 't',
    orderId: 'o',
    orderRef: 'order-1',
    instructions: [],
  });
  state.instructions = optionLists.map((options, position) =>
    newMachine({
      instructionId: `i${position}`,
      position,
      instructionRef: `ref-${position}`,
      direction: 'DEBIT',
      amountMinor: '100',
      currency: 'EUR',
      country: 'FR',
      openAt: '2030-01-01T00:00:00.000Z',
      dueAt: '2030-01-02T00:00:00.000Z',
      schemeId: 's',
      schemeVersion: 1,
      options,
      appId: options[0].appId,
      paymentMethod: options[0].paymentMethod,
    } satisfies InstructionPlan),
  );
  return state;
}

describe('the state a run hands to the next', () => {
  it('carries each distinct list of options once, and gives every instruction its own again', () => {
    const card = [option('CARD'), option('VOUCHER', ['g1', 'g2'])];
    const bank = [option('BANK_DEBIT')];
    const state = stateWith([card, structuredClone(card), bank, structuredClone(card)]);
    const packed = packState(structuredClone(state));
    expect(packed.optionSets).toEqual([card, bank]);
    expect(packed.instructions.map((m) => m.plan.options)).toEqual([0, 0, 1, 0]);

    const unpacked = unpackState(JSON.parse(JSON.stringify(packed)));
    expect(unpacked).toEqual(state);
    // Each its own: a change to one instruction's options is no change to another's.
    unpacked.instructions[0].plan.options[1].voucherGroupIds.push('g3');
    expect(unpacked.instructions[1].plan.options[1].voucherGroupIds).toEqual(['g1', 'g2']);
  });

  it('reads a packed state to which a worker of the code before added an instruction with its options', () => {
    const card = [option('CARD')];
    const bank = [option('BANK_DEBIT')];
    const state = stateWith([card, bank]);
    const packed = packState(structuredClone(state));
    // A worker of the code before took the packed state as it was, added to it, and handed it on.
    const added = stateWith([card, bank]).instructions[1];
    packed.instructions.push({ ...added, plan: { ...added.plan, instructionRef: 'added' } });
    const unpacked = unpackState(JSON.parse(JSON.stringify(packed)));
    expect(unpacked.instructions.map((m) => m.plan.options)).toEqual([card, bank, bank]);
  });

  it('reads a state handed on unpacked, by a run of the code before', () => {
    const state = stateWith([[option('CARD')]]);
    expect(unpackState(structuredClone(state))).toEqual(state);
  });
});
