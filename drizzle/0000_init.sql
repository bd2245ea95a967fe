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
