-- Token signing keys are kept for good: SQLite refuses any DELETE of token_keys, and an UPDATE may
-- only retire a current key (set retired_at and verify_until where both are null). A retired key
-- cannot be un-retired or given a longer grace, and kid, public_jwk and created_at never change.
CREATE TRIGGER `token_keys_no_delete` BEFORE DELETE ON `token_keys`
BEGIN
  SELECT RAISE(ABORT, 'token_keys rows are never deleted');
END;
--> statement-breakpoint
CREATE TRIGGER `token_keys_retire_only` BEFORE UPDATE ON `token_keys`
WHEN OLD.retired_at IS NOT NULL OR OLD.verify_until IS NOT NULL
  OR NEW.kid IS NOT OLD.kid OR NEW.public_jwk IS NOT OLD.public_jwk OR NEW.created_at IS NOT OLD.created_at
BEGIN
  SELECT RAISE(ABORT, 'token_keys: a key can only be retired once (retired_at, verify_until)');
END;
