-- The audit trail is append-only: SQLite refuses any UPDATE or DELETE of gov_activities.
CREATE TRIGGER `gov_activities_no_update` BEFORE UPDATE ON `gov_activities`
BEGIN
  SELECT RAISE(ABORT, 'gov_activities is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `gov_activities_no_delete` BEFORE DELETE ON `gov_activities`
BEGIN
  SELECT RAISE(ABORT, 'gov_activities is append-only');
END;
