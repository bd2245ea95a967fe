CREATE TABLE `broker_meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `gov_activities` (
	`seq` integer PRIMARY KEY NOT NULL,
	`ts` text NOT NULL,
	`actor` text NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	`detail` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `gov_activities_subject_idx` ON `gov_activities` (`subject`,`seq`);--> statement-breakpoint
CREATE INDEX `gov_activities_kind_idx` ON `gov_activities` (`kind`,`seq`);--> statement-breakpoint
CREATE TABLE `group_keys` (
	`group` text NOT NULL,
	`version` integer NOT NULL,
	`created_at` integer NOT NULL,
	`retires_at` integer,
	PRIMARY KEY(`group`, `version`)
);
--> statement-breakpoint
CREATE TABLE `group_keys_version` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `task_dispatches` (
	`id` text PRIMARY KEY NOT NULL,
	`dispatch_key` text NOT NULL,
	`task_id` text NOT NULL,
	`kind` text NOT NULL,
	`group` text NOT NULL,
	`target_state` text NOT NULL,
	`task_version` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`created_at` integer NOT NULL,
	`acked_at` integer,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `task_dispatches_dispatch_key_unique` ON `task_dispatches` (`dispatch_key`);--> statement-breakpoint
CREATE INDEX `task_dispatches_group_status_idx` ON `task_dispatches` (`group`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `task_dispatches_task_idx` ON `task_dispatches` (`task_id`);--> statement-breakpoint
CREATE TABLE `task_gate_decisions` (
	`id` text PRIMARY KEY NOT NULL,
	`task_id` text NOT NULL,
	`gate` text NOT NULL,
	`decision` text NOT NULL,
	`actor` text NOT NULL,
	`reason` text,
	`risk_acceptance` text,
	`follow_up_task_id` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `task_gate_decisions_task_idx` ON `task_gate_decisions` (`task_id`,`id`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` text PRIMARY KEY NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`type` text NOT NULL,
	`priority` text NOT NULL,
	`state` text NOT NULL,
	`blocked_from` text,
	`blocked_reason` text,
	`assigned_group` text,
	`executor_group` text,
	`gate` text DEFAULT 'none' NOT NULL,
	`gate_status` text,
	`definition_of_done` text DEFAULT '[]' NOT NULL,
	`docs_updated` integer DEFAULT false NOT NULL,
	`parent_task_id` text,
	`version` integer DEFAULT 1 NOT NULL,
	`created_by` text NOT NULL,
	`idempotency_key` text,
	`request_hash` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`parent_task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `tasks_state_idx` ON `tasks` (`state`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_assigned_idx` ON `tasks` (`assigned_group`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_parent_idx` ON `tasks` (`parent_task_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_idempotency_idx` ON `tasks` (`created_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE TABLE `approvers` (
	`id` text PRIMARY KEY NOT NULL,
	`group` text NOT NULL,
	`public_jwk` text NOT NULL,
	`thumbprint` text NOT NULL,
	`added_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `grant_approvals` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`grant_id` text NOT NULL,
	`approver_id` text NOT NULL,
	`approver_group` text NOT NULL,
	`decision` text NOT NULL,
	`grant_digest` text NOT NULL,
	`jws` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`grant_id`) REFERENCES `grants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `grant_approvals_once_idx` ON `grant_approvals` (`grant_id`,`grant_digest`,`approver_id`);--> statement-breakpoint
CREATE TABLE `grant_changes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`grant_id` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `grants` (
	`id` text PRIMARY KEY NOT NULL,
	`group` text NOT NULL,
	`provider` text NOT NULL,
	`level` integer NOT NULL,
	`allowed_actions` text,
	`denied_actions` text,
	`resources` text,
	`reason` text NOT NULL,
	`requested_by` text NOT NULL,
	`status` text NOT NULL,
	`ttl_s` integer,
	`requested_expires_at` integer,
	`digest` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`activated_at` integer,
	`expires_at` integer,
	`pending_expires_at` integer,
	`rejected_at` integer,
	`revoked_at` integer,
	`revoked_by` text,
	`revoke_reason` text,
	`idempotency_key` text,
	`request_hash` text
);
--> statement-breakpoint
CREATE INDEX `grants_group_provider_idx` ON `grants` (`group`,`provider`);--> statement-breakpoint
CREATE INDEX `grants_status_idx` ON `grants` (`status`);--> statement-breakpoint
CREATE INDEX `grants_activated_idx` ON `grants` (`activated_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `grants_idempotency_idx` ON `grants` (`requested_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE TABLE `ext_calls` (
	`group` text NOT NULL,
	`request_id` text NOT NULL,
	`fingerprint` text NOT NULL,
	`action` text NOT NULL,
	`level` integer NOT NULL,
	`resource` text NOT NULL,
	`summary` text NOT NULL,
	`task_id` text,
	`grant_id` text NOT NULL,
	`status` text NOT NULL,
	`http_status` integer,
	`response` text,
	`receipt` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`finished_at` integer,
	`duration_ms` integer,
	`instance_id` text,
	PRIMARY KEY(`group`, `request_id`)
);
--> statement-breakpoint
CREATE INDEX `ext_calls_status_idx` ON `ext_calls` (`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `ext_calls_task_idx` ON `ext_calls` (`task_id`,`created_at`) WHERE task_id IS NOT NULL;--> statement-breakpoint
CREATE TABLE `token_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`public_jwk` text NOT NULL,
	`created_at` integer NOT NULL,
	`retired_at` integer,
	`verify_until` integer,
	`rotation` text,
	CONSTRAINT "token_keys_retired_pair" CHECK((retired_at IS NULL) = (verify_until IS NULL)),
	CONSTRAINT "token_keys_grace" CHECK(verify_until IS NULL OR verify_until >= retired_at)
);
--> statement-breakpoint
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
CREATE UNIQUE INDEX `token_revocations_idempotency_idx` ON `token_revocations` (`revoked_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE TABLE `broker_instances` (
	`id` text PRIMARY KEY NOT NULL,
	`pid` integer NOT NULL,
	`host` text NOT NULL,
	`url` text,
	`started_at` integer NOT NULL,
	`lease_until` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `broker_instances_lease_idx` ON `broker_instances` (`lease_until`);--> statement-breakpoint
-- Everything below is written by hand: drizzle-kit generated the tables and indexes above from the
-- schema files (src/schema.ts), and knows nothing of triggers or seed rows.
--
-- The audit trail is append-only: SQLite refuses any UPDATE or DELETE of gov_activities.
CREATE TRIGGER `gov_activities_no_update` BEFORE UPDATE ON `gov_activities`
BEGIN
  SELECT RAISE(ABORT, 'gov_activities is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `gov_activities_no_delete` BEFORE DELETE ON `gov_activities`
BEGIN
  SELECT RAISE(ABORT, 'gov_activities is append-only');
END;
--> statement-breakpoint
-- The grant cache's change log: every write to grants or grant_approvals, from any connection or
-- process (the server, `broker grants revoke` in the CLI), appends the changed grant's id to
-- grant_changes. The grant source reads MAX(seq) and reloads only the grants listed after the last
-- seq it saw. The log keeps its last 1000 rows; a reader further behind reloads everything.
CREATE TRIGGER `grant_changes_on_grant_insert` AFTER INSERT ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_grant_update` AFTER UPDATE ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_grant_delete` AFTER DELETE ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (OLD.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_insert` AFTER INSERT ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_update` AFTER UPDATE ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_delete` AFTER DELETE ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (OLD.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_keep_last_1000` AFTER INSERT ON `grant_changes`
BEGIN
  DELETE FROM `grant_changes` WHERE `seq` <= NEW.`seq` - 1000;
END;
--> statement-breakpoint
-- The key cache's change counter: every write to group_keys, from any connection or process (the
-- server, `broker keys rotate` in the CLI), bumps group_keys_version.version in the same
-- transaction. The key store reads it only when its connection's change watch (total_changes() and
-- PRAGMA data_version) says something may have changed, and reloads group_keys when it moved.
INSERT OR IGNORE INTO `group_keys_version` (`id`, `version`) VALUES (1, 0);
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_insert` AFTER INSERT ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_update` AFTER UPDATE ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_delete` AFTER DELETE ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
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
--> statement-breakpoint
-- Token signing keys are kept for good: SQLite refuses any DELETE of token_keys, and an UPDATE may
-- only retire a current key (set retired_at and verify_until where both are null). A retired key
-- cannot be un-retired or given a longer grace, and kid, public_jwk, created_at and rotation
-- (written once, with the row) never change.
CREATE TRIGGER `token_keys_no_delete` BEFORE DELETE ON `token_keys`
BEGIN
  SELECT RAISE(ABORT, 'token_keys rows are never deleted');
END;
--> statement-breakpoint
CREATE TRIGGER `token_keys_retire_only` BEFORE UPDATE ON `token_keys`
WHEN OLD.retired_at IS NOT NULL OR OLD.verify_until IS NOT NULL
  OR NEW.kid IS NOT OLD.kid OR NEW.public_jwk IS NOT OLD.public_jwk OR NEW.created_at IS NOT OLD.created_at
  OR NEW.rotation IS NOT OLD.rotation
BEGIN
  SELECT RAISE(ABORT, 'token_keys: a key can only be retired once (retired_at, verify_until)');
END;
