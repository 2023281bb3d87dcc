// Entry point the worker bundles: every workflow type of the `payments` and `webhooks` task queues.
export { paymentOrderWorkflow } from '../orders/workflow/payment-order.workflow.js';
export { webhookDeliveryWorkflow } from '../webhooks/workflow/webhook-delivery.workflow.js';
