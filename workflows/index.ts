// Entry point the worker bundles: every workflow type of the `payments` and `webhooks` task queues.
export { paymentOrderWorkflow } from './payment-order.workflow.js';
export { webhookDeliveryWorkflow } from './webhook-delivery.workflow.js';
