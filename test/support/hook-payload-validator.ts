import { isIP } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import {
  defaultHookSchema,
  pydanticNullable,
  tusdHookSchema,
  tusdV2HookSchema,
  v2HookSchema,
} from './hook-schemas.ts';

export type HookSchemaName = 'default' | 'v2' | 'tusd' | 'tusd-v2';

const ajv = new Ajv({ allErrors: true, strict: true });
// pydantic's IPvAnyAddress.
ajv.addFormat('ipvanyaddress', (value: string) => isIP(value) !== 0);

const validators = {
  default: ajv.compile(pydanticNullable(defaultHookSchema)),
  v2: ajv.compile(pydanticNullable(v2HookSchema)),
  tusd: ajv.compile(pydanticNullable(tusdHookSchema)),
  'tusd-v2': ajv.compile(tusdV2HookSchema),
};

/** The schema violations of a payload (an empty list when it conforms to the seed's schema). */
export function hookSchemaErrors(format: HookSchemaName, payload: unknown): ErrorObject[] {
  const validate = validators[format];
  return validate(payload) ? [] : [...(validate.errors ?? [])];
}
