CREATE TABLE `group_keys_version` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL
);
