CREATE TABLE `grant_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`group` text NOT NULL,
	`provider` text NOT NULL,
	`level` integer NOT NULL,
	`allowed_actions` text,
	`denied_actions` text,
	`resources` text,
	`ttl_s` integer NOT NULL,
	`justification` text NOT NULL,
	`renews` text,
	`status` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`pending_expires_at` integer NOT NULL,
	`decided_by` text,
	`decided_at` integer,
	`decision_reason` text,
	`grant_id` text,
	`idempotency_key` text,
	`request_hash` text
);
--> statement-breakpoint
CREATE INDEX `grant_requests_group_idx` ON `grant_requests` (`group`);--> statement-breakpoint
CREATE INDEX `grant_requests_status_idx` ON `grant_requests` (`status`,`pending_expires_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `grant_requests_idempotency_idx` ON `grant_requests` (`group`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;