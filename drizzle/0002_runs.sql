CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`dispatch_key` text NOT NULL,
	`dispatch_id` text NOT NULL,
	`task_id` text NOT NULL,
	`group` text NOT NULL,
	`status` text NOT NULL,
	`pid` integer,
	`exit_code` integer,
	`signal` text,
	`output_tail` text,
	`context_file` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `runs_dispatch_key_unique` ON `runs` (`dispatch_key`);--> statement-breakpoint
CREATE INDEX `runs_status_idx` ON `runs` (`status`,`id`);--> statement-breakpoint
CREATE INDEX `runs_task_idx` ON `runs` (`task_id`,`id`);