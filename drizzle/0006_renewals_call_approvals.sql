CREATE TABLE `grant_renewals` (
	`id` text PRIMARY KEY NOT NULL,
	`grant_id` text NOT NULL,
	`requested_by` text NOT NULL,
	`reason` text NOT NULL,
	`previous_expires_at` integer,
	`expires_at` integer NOT NULL,
	`digest` text NOT NULL,
	`status` text NOT NULL,
	`created_at` integer NOT NULL,
	`pending_expires_at` integer,
	`applied_at` integer,
	`idempotency_key` text,
	`request_hash` text,
	FOREIGN KEY (`grant_id`) REFERENCES `grants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `grant_renewals_grant_idx` ON `grant_renewals` (`grant_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `grant_renewals_idempotency_idx` ON `grant_renewals` (`requested_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE TABLE `call_approvals` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`group` text NOT NULL,
	`request_id` text NOT NULL,
	`approver_id` text NOT NULL,
	`approver_group` text NOT NULL,
	`request_digest` text NOT NULL,
	`jws` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `call_approvals_once_idx` ON `call_approvals` (`group`,`request_id`,`approver_id`);--> statement-breakpoint
CREATE TABLE `call_holds` (
	`group` text NOT NULL,
	`request_id` text NOT NULL,
	`request_digest` text NOT NULL,
	`body` text NOT NULL,
	`request` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`group`, `request_id`)
);
--> statement-breakpoint
CREATE INDEX `call_holds_expiry_idx` ON `call_holds` (`expires_at`);--> statement-breakpoint
ALTER TABLE `grant_requests` ADD `renewal_of` text;