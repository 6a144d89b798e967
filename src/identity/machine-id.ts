import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AgentError, errnoCode } from '../common/index.js';

/**
 * The appliance's stable identifier as the MCP sees it: HMAC-SHA256 of /etc/machine-id keyed by
 * the site id. machine-id(5) asks that the raw id never leave the machine; keyed per site, the
 * same hardware enrolled at two sites cannot be linked, yet a re-enrollment at one site can.
 */
export function machineIdentifier(machineIdFile: string, siteId: string): string {
  let text: string;
  try {
    text = readFileSync(machineIdFile, 'utf8');
  } catch (e) {
    throw new AgentError('machine_id', `${machineIdFile}: cannot read (${errnoCode(e, 'error')})`);
  }
  const id = text.trim();
  if (!/^[0-9a-f]{32}$/.test(id)) throw new AgentError('machine_id', `${machineIdFile}: not a machine id (32 lowercase hex digits)`);
  return `hmac-sha256:${createHmac('sha256', siteId).update(id).digest('hex')}`;
}
