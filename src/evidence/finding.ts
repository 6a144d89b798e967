/** What `verify` found wrong with one file; its own module so the key ring words findings without importing the verifier. */
export type FindingKind =
  | 'unreadable'
  | 'bad_envelope'
  | 'bad_signature'
  | 'unknown_key'
  | 'bad_bundle'
  | 'gap'
  | 'broken_link'
  | 'duplicate_seq'
  | 'misnamed'
  | 'truncated_start'
  | 'truncated_end'
  | 'bad_receipt'
  | 'receipt_mismatch';

export interface Finding {
  readonly kind: FindingKind;
  readonly file: string;
  readonly message: string;
}
