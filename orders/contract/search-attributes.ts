import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes operators filter orders by in the Temporal UI (ARCHITECTURE.md, "Temporal design"). */
export const TenantIdKey = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const OrderRefKey = defineSearchAttributeKey('OrderRef', SearchAttributeType.KEYWORD);
export const CustomerRefKey = defineSearchAttributeKey('CustomerRef', SearchAttributeType.KEYWORD);
export const OrderStatusKey = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);
export const NextActionAtKey = defineSearchAttributeKey('NextActionAt', SearchAttributeType.DATETIME);

export const ORDER_SEARCH_ATTRIBUTES = [TenantIdKey, OrderRefKey, CustomerRefKey, OrderStatusKey, NextActionAtKey];
