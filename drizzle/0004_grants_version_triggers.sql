-- The grant cache's change counter: every write to grants or grant_approvals, from any connection
-- or process (the server, `broker grants revoke` in the CLI), bumps grants_version.version, which
-- GrantStore reads per lookup and reloads on change.
INSERT INTO `grants_version` (`id`, `version`) VALUES (1, 0);
--> statement-breakpoint
CREATE TRIGGER `grants_version_on_insert` AFTER INSERT ON `grants`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `grants_version_on_update` AFTER UPDATE ON `grants`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `grants_version_on_delete` AFTER DELETE ON `grants`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `grant_approvals_version_on_insert` AFTER INSERT ON `grant_approvals`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `grant_approvals_version_on_update` AFTER UPDATE ON `grant_approvals`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `grant_approvals_version_on_delete` AFTER DELETE ON `grant_approvals`
BEGIN
  UPDATE `grants_version` SET `version` = `version` + 1 WHERE `id` = 1;
END;
