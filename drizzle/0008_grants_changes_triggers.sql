-- The grant cache's change log replaces the grants_version counter: every write to grants or
-- grant_approvals, from any connection or process (the server, `broker grants revoke` in the CLI),
-- appends the changed grant's id to grant_changes. GrantStore reads MAX(seq) per lookup and reloads
-- only the grants listed after the last seq it saw. The log keeps its last 1000 rows; a reader
-- further behind reloads everything.
DROP TRIGGER IF EXISTS `grants_version_on_insert`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `grants_version_on_update`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `grants_version_on_delete`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `grant_approvals_version_on_insert`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `grant_approvals_version_on_update`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `grant_approvals_version_on_delete`;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_grant_insert` AFTER INSERT ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_grant_update` AFTER UPDATE ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_grant_delete` AFTER DELETE ON `grants`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (OLD.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_insert` AFTER INSERT ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_update` AFTER UPDATE ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (NEW.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_on_approval_delete` AFTER DELETE ON `grant_approvals`
BEGIN
  INSERT INTO `grant_changes` (`grant_id`) VALUES (OLD.`grant_id`);
END;
--> statement-breakpoint
CREATE TRIGGER `grant_changes_keep_last_1000` AFTER INSERT ON `grant_changes`
BEGIN
  DELETE FROM `grant_changes` WHERE `seq` <= NEW.`seq` - 1000;
END;
