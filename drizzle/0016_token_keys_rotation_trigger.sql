-- token_keys.rotation is written once, with the row, and never changes: the retire-only trigger
-- is recreated to also refuse an UPDATE of it (and still allows only the one retirement).
DROP TRIGGER `token_keys_retire_only`;
--> statement-breakpoint
CREATE TRIGGER `token_keys_retire_only` BEFORE UPDATE ON `token_keys`
WHEN OLD.retired_at IS NOT NULL OR OLD.verify_until IS NOT NULL
  OR NEW.kid IS NOT OLD.kid OR NEW.public_jwk IS NOT OLD.public_jwk OR NEW.created_at IS NOT OLD.created_at
  OR NEW.rotation IS NOT OLD.rotation
BEGIN
  SELECT RAISE(ABORT, 'token_keys: a key can only be retired once (retired_at, verify_until)');
END;
