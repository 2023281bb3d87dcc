import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261127234232 } from './Migration20261127234232.js';
import { Migration20261127235912 } from './Migration20261127235912.js';
import { Migration20261128004500 } from './Migration20261128004500.js';
import { Migration20261128153100 } from './Migration20261128153100.js';
import { Migration20261128162308 } from './Migration20261128162308.js';
import { Migration20261128164843 } from './Migration20261128164843.js';
import { Migration20261128174546 } from './Migration20261128174546.js';
import { Migration20261128190000 } from './Migration20261128190000.js';
import { Migration20261130090000 } from './Migration20261130090000.js';
import { Migration20261130120000 } from './Migration20261130120000.js';
import { Migration20261130140105 } from './Migration20261130140105.js';
import { Migration20261130140513 } from './Migration20261130140513.js';
import { Migration20261130141356 } from './Migration20261130141356.js';
import { Migration20261130164027 } from './Migration20261130164027.js';
import { Migration20261130171044 } from './Migration20261130171044.js';
import { Migration20261201060000 } from './Migration20261201060000.js';
import { Migration20261202010805 } from './Migration20261202010805.js';
import { Migration20261202020500 } from './Migration20261202020500.js';
import { Migration20261202050000 } from './Migration20261202050000.js';
import { Migration20261202120000 } from './Migration20261202120000.js';
import { Migration20261202160000 } from './Migration20261202160000.js';
import { Migration20261202170000 } from './Migration20261202170000.js';
import { Migration20261203100000 } from './Migration20261203100000.js';
import { Migration20261204220000 } from './Migration20261204220000.js';
import { Migration20261205010000 } from './Migration20261205010000.js';
import { Migration20261205110000 } from './Migration20261205110000.js';
import { Migration20261205150000 } from './Migration20261205150000.js';
import { Migration20261205230000 } from './Migration20261205230000.js';
import { Migration20261206080000 } from './Migration20261206080000.js';
import { Migration20261206100000 } from './Migration20261206100000.js';
import { Migration20261206130000 } from './Migration20261206130000.js';
import { Migration20261206140000 } from './Migration20261206140000.js';
import { Migration20261206150000 } from './Migration20261206150000.js';
import { Migration20261206180000 } from './Migration20261206180000.js';
import { Migration20261206230000 } from './Migration20261206230000.js';
import { Migration20261206230100 } from './Migration20261206230100.js';
import { Migration20261207100000 } from './Migration20261207100000.js';
import { Migration20261207190000 } from './Migration20261207190000.js';
import { Migration20261207193000 } from './Migration20261207193000.js';

/**
 * Every committed migration, in order. Listed statically rather than found by glob, so that they
 * load the same way under tsx, vitest and a bundler (a dynamic import of a .ts file does not).
 * `npm run migration:create` writes new files; add each here.
 */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20261127234232', class: Migration20261127234232 },
  { name: 'Migration20261127235912', class: Migration20261127235912 },
  { name: 'Migration20261128004500', class: Migration20261128004500 },
  { name: 'Migration20261128153100', class: Migration20261128153100 },
  { name: 'Migration20261128162308', class: Migration20261128162308 },
  { name: 'Migration20261128164843', class: Migration20261128164843 },
  { name: 'Migration20261128174546', class: Migration20261128174546 },
  { name: 'Migration20261128190000', class: Migration20261128190000 },
  { name: 'Migration20261130090000', class: Migration20261130090000 },
  { name: 'Migration20261130120000', class: Migration20261130120000 },
  { name: 'Migration20261130140105', class: Migration20261130140105 },
  { name: 'Migration20261130140513', class: Migration20261130140513 },
  { name: 'Migration20261130141356', class: Migration20261130141356 },
  { name: 'Migration20261130164027', class: Migration20261130164027 },
  { name: 'Migration20261130171044', class: Migration20261130171044 },
  { name: 'Migration20261201060000', class: Migration20261201060000 },
  { name: 'Migration20261202010805', class: Migration20261202010805 },
  { name: 'Migration20261202020500', class: Migration20261202020500 },
  { name: 'Migration20261202050000', class: Migration20261202050000 },
  { name: 'Migration20261202120000', class: Migration20261202120000 },
  { name: 'Migration20261202160000', class: Migration20261202160000 },
  { name: 'Migration20261202170000', class: Migration20261202170000 },
  { name: 'Migration20261203100000', class: Migration20261203100000 },
  { name: 'Migration20261204220000', class: Migration20261204220000 },
  { name: 'Migration20261205010000', class: Migration20261205010000 },
  { name: 'Migration20261205110000', class: Migration20261205110000 },
  { name: 'Migration20261205150000', class: Migration20261205150000 },
  { name: 'Migration20261205230000', class: Migration20261205230000 },
  { name: 'Migration20261206080000', class: Migration20261206080000 },
  { name: 'Migration20261206100000', class: Migration20261206100000 },
  { name: 'Migration20261206130000', class: Migration20261206130000 },
  { name: 'Migration20261206140000', class: Migration20261206140000 },
  { name: 'Migration20261206150000', class: Migration20261206150000 },
  { name: 'Migration20261206180000', class: Migration20261206180000 },
  { name: 'Migration20261206230000', class: Migration20261206230000 },
  { name: 'Migration20261206230100', class: Migration20261206230100 },
  { name: 'Migration20261207100000', class: Migration20261207100000 },
  { name: 'Migration20261207190000', class: Migration20261207190000 },
  { name: 'Migration20261207193000', class: Migration20261207193000 },
];
