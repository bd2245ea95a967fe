-- The key cache's change counter: every write to group_keys, from any connection or process (the
-- server, `broker keys rotate` in the CLI), bumps group_keys_version.version in the same
-- transaction. KeyStore reads it only when its connection's change watch (total_changes() and
-- PRAGMA data_version) says something may have changed, and reloads group_keys when it moved.
INSERT OR IGNORE INTO `group_keys_version` (`id`, `version`) VALUES (1, 0);
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_insert` AFTER INSERT ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_update` AFTER UPDATE ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `group_keys_version_on_delete` AFTER DELETE ON `group_keys`
BEGIN
  UPDATE `group_keys_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
