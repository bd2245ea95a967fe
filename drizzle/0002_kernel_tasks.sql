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
CREATE UNIQUE INDEX `tasks_idempotency_idx` ON `tasks` (`created_by`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;