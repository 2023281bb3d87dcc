// Entry point the worker bundles: every workflow type the `payments` task queue runs.
export { paymentOrderWorkflow } from './payment-order.workflow.js';
