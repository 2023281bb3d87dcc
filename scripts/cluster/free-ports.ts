import { freePort, portIsFree } from '../../observability/free-port.js';
import { portsAround, type TemporalServerPorts } from '../temporal/server-config.js';
import type { ClusterOptions } from './topology.js';

/**
 * Ports for a Temporal server of its own (a frontend and Temporal's usual layout around it) with
 * nothing listening on any of them: for a test's or a benchmark's cluster beside one already running.
 */
export async function freeTemporalPorts(): Promise<TemporalServerPorts> {
  for (;;) {
    // The server stores its membership ports as smallint: all of them below 32768.
    const ports = portsAround(20_000 + Math.floor(Math.random() * 12_000));
    if ((await Promise.all(Object.values(ports).map(portIsFree))).every(Boolean)) return ports;
  }
}

/** Ports for a whole cluster of its own (two APIs, the sandbox, Temporal and its UI), each free now. */
export async function freeClusterPorts(): Promise<ClusterOptions['ports']> {
  return {
    apis: [await freePort(), await freePort()],
    sandbox: await freePort(),
    temporal: await freeTemporalPorts(),
    ui: await freePort(),
  };
}
