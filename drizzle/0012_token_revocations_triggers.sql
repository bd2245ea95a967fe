-- Token revocations are append-only, like the audit trail: SQLite refuses any UPDATE or DELETE of
-- token_revocations, so a revoked token cannot be quietly brought back.
CREATE TRIGGER `token_revocations_no_update` BEFORE UPDATE ON `token_revocations`
BEGIN
  SELECT RAISE(ABORT, 'token_revocations is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `token_revocations_no_delete` BEFORE DELETE ON `token_revocations`
BEGIN
  SELECT RAISE(ABORT, 'token_revocations is append-only');
END;
