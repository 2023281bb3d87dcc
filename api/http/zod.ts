import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

// Schemas double as the OpenAPI source: every schema module imports z from here so .openapi() exists.
extendZodWithOpenApi(z);

export { z };
