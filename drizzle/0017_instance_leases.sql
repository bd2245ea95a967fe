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
ALTER TABLE `ext_calls` ADD `instance_id` text;