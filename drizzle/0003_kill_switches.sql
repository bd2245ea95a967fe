CREATE TABLE `kill_switches` (
	`id` text PRIMARY KEY NOT NULL,
	`scope` text NOT NULL,
	`target` text,
	`reason` text NOT NULL,
	`set_by` text NOT NULL,
	`set_at` integer NOT NULL,
	`cleared_by` text,
	`cleared_at` integer,
	`clear_reason` text,
	`idempotency_key` text,
	`request_hash` text
);
--> statement-breakpoint
CREATE INDEX `kill_switches_active_idx` ON `kill_switches` (`cleared_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `kill_switches_idempotency_idx` ON `kill_switches` (`set_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;