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
CREATE TABLE `grants_version` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL
);
