/** What a scripted command does: exit with output after a simulated duration, or never exit. */
export type SimReply = { readonly exitCode: number; readonly stdout?: string; readonly stderr?: string; readonly durationMs?: number } | { readonly hang: true };

export const ok = (stdout = '', durationMs?: number): SimReply => ({ exitCode: 0, stdout, ...(durationMs === undefined ? {} : { durationMs }) });
export const fail = (exitCode: number, stderr: string, stdout = ''): SimReply => ({ exitCode, stdout, stderr });
