CREATE TABLE `grant_changes` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`grant_id` text NOT NULL
);
