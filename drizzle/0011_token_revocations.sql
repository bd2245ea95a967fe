CREATE TABLE `token_revocations` (
	`id` text PRIMARY KEY NOT NULL,
	`jti` text,
	`subject` text,
	`role` text,
	`issued_before` integer,
	`revoked_at` integer NOT NULL,
	`revoked_by` text NOT NULL,
	`reason` text NOT NULL,
	`idempotency_key` text,
	`request_hash` text,
	CONSTRAINT "token_revocations_one_target" CHECK((jti IS NOT NULL AND subject IS NULL AND role IS NULL AND issued_before IS NULL) OR (jti IS NULL AND subject IS NOT NULL AND issued_before IS NOT NULL)),
	CONSTRAINT "token_revocations_role" CHECK(role IS NULL OR role IN ('operator', 'auditor'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `token_revocations_jti_idx` ON `token_revocations` (`jti`) WHERE jti IS NOT NULL;--> statement-breakpoint
CREATE INDEX `token_revocations_subject_idx` ON `token_revocations` (`subject`,`issued_before`) WHERE subject IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `token_revocations_idempotency_idx` ON `token_revocations` (`revoked_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;