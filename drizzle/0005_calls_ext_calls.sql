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
	PRIMARY KEY(`group`, `request_id`)
);
--> statement-breakpoint
CREATE INDEX `ext_calls_status_idx` ON `ext_calls` (`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `ext_calls_task_idx` ON `ext_calls` (`task_id`,`created_at`) WHERE task_id IS NOT NULL;